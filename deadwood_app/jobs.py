"""Engine runs in a background thread, so a long run never blocks the page.

A :class:`Job` takes immutable :class:`deadwood.RunConfig` objects fixed when the
user pressed Run and works through them one after another. The page only ever
*reads* a job (:meth:`Job.view`, a consistent copy taken under a lock) and may ask
it to stop; widget changes made meanwhile build new configurations and cannot
reach the running one, and every result lands in the engine's cache under its
own configuration's key. Nothing here imports Streamlit, so it is tested plainly.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Sequence

import deadwood
from deadwood import DeadwoodError, Event, RunConfig, RunStopped
from deadwood.stages import all_stages, planned

@dataclass
class StageProgress:
    done: int = 0
    total: int = 0
    state: str = "pending"  # pending, running, done, cached

    @property
    def fraction(self) -> float:
        if self.state in ("done", "cached"):
            return 1.0
        return self.done / self.total if self.total else 0.0


@dataclass
class JobView:
    """A snapshot of a job, safe to read while the job goes on."""

    configs: tuple[RunConfig, ...]
    state: str  # running, done, stopped, failed
    index: int  # the configuration being (or last) run
    stages: dict[str, StageProgress]
    history: list[dict]  # epoch entries of the configuration being run
    finished: list[str]  # keys of the configurations completed so far
    cached: list[str]  # the subset of ``finished`` that came straight from the cache
    error: str | None
    details: str | None  # a traceback, only for errors that are bugs rather than bad input
    seconds: float

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def config(self) -> RunConfig:
        return self.configs[min(self.index, len(self.configs) - 1)]


class Job:
    """Runs ``configs`` in order in a daemon thread through ``runner`` (``deadwood.run``)."""

    def __init__(self, configs: Sequence[RunConfig], *, runner: Callable = deadwood.run, cache_dir=None):
        if not configs:
            raise ValueError("a job needs at least one configuration")
        self.configs = tuple(configs)
        self._runner, self._cache_dir = runner, cache_dir
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state, self._index = "running", 0
        self._stages: dict[str, StageProgress] = {}
        self._history: list[dict] = []
        self._finished: list[str] = []
        self._cached: list[str] = []
        self._error: str | None = None
        self._details: str | None = None
        self._t0 = time.perf_counter()
        self._t1: float | None = None
        self._reset_stages(self.configs[0])
        self._thread = threading.Thread(target=self._work, name="deadwood-job", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask the run to stop at its next event; finished work (teacher, earlier runs) is kept."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> JobView:
        self._thread.join(timeout)
        return self.view()

    def view(self) -> JobView:
        with self._lock:
            return JobView(
                configs=self.configs, state=self._state, index=self._index,
                stages={k: StageProgress(v.done, v.total, v.state) for k, v in self._stages.items()},
                history=list(self._history), finished=list(self._finished), cached=list(self._cached),
                error=self._error, details=self._details,
                seconds=(self._t1 or time.perf_counter()) - self._t0)

    # ---------------------------------------------------------------- worker
    def _reset_stages(self, config: RunConfig) -> None:
        self._stages = {s: StageProgress() for s in planned(config)}
        self._history = []

    def _work(self) -> None:
        state, error, details = "done", None, None
        try:
            for i, config in enumerate(self.configs):
                if self._stop.is_set():
                    raise RunStopped("stopped by the user")
                with self._lock:
                    self._index = i
                    self._reset_stages(config)
                self._runner(config, on_event=self._on_event, cache_dir=self._cache_dir)
                with self._lock:
                    self._finished.append(config.key())
        except RunStopped:
            state = "stopped"
        except DeadwoodError as e:
            state, error = "failed", str(e)
        except Exception as e:  # a bug, not bad input: keep the traceback for the details view
            state, error = "failed", f"unexpected {type(e).__name__}: {e}"
            details = traceback.format_exc()
        with self._lock:
            self._state, self._error, self._details = state, error, details
            self._t1 = time.perf_counter()

    def _on_event(self, event: Event) -> None:
        if self._stop.is_set():
            raise RunStopped("stopped by the user")
        with self._lock:
            self._record(event)

    def _record(self, e: Event) -> None:
        if e.kind == "cached" and e.stage == "run":
            for s in self._stages.values():
                s.state = "cached"
            self._cached.append(self.configs[self._index].key())
            return
        stage = e.stage
        if stage not in self._stages:  # an unplanned stage (the teacher's evaluation): in run order
            self._stages = _insert_in_order(self._stages, stage)
        progress = self._stages[stage]
        if e.kind == "cached":
            progress.state = "cached"
        elif e.kind == "start":
            progress.state, progress.total, progress.done = "running", e.total, 0
        elif e.kind == "epoch":
            progress.done, progress.total = e.epoch, max(e.total, e.epoch)
            progress.state = "done" if stage == "cut" else "running"  # the cut is one event
            if e.metrics:  # evaluation batches report progress only
                self._history.append({"phase": stage, **e.metrics})
        elif e.kind == "end":
            progress.state, progress.done = "done", progress.total


def _insert_in_order(stages: dict, new: str) -> dict:
    """``stages`` with ``new`` added at its place in the engine's stage order (last if unknown)."""
    order = [s.name for s in all_stages()]
    rank = {name: i for i, name in enumerate(order)}
    items = list(stages.items()) + [(new, StageProgress())]
    return dict(sorted(items, key=lambda kv: rank.get(kv[0], len(order))))
