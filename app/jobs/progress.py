"""A job's progress, read from the engine's events: the page's side of what ``deadwood.progress``
draws as tqdm bars on the command line.

:class:`Progress` turns the events of one job into stage bars, the epoch history the live
charts draw, and notices; :class:`JobView` is the copy of it a page reads, and :class:`Ahead`
the short account of a job that a queued page waits for. None knows how the job runs (thread or
worker process) or who follows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from deadwood import Event, RunConfig
from deadwood.stages import PROFILE, all_stages, planned


@dataclass
class StageProgress:
    done: int = 0
    total: int = 0
    state: str = "pending"  # pending, running, done, cached
    step: int = 0  # batches done of the epoch under way (its 'step' events; 0 until one comes)
    steps: int = 0  # and its batches

    @property
    def fraction(self) -> float:
        if self.state in ("done", "cached"):
            return 1.0
        within = self.step / self.steps if self.steps else 0.0
        return min((self.done + within) / self.total, 1.0) if self.total else 0.0

    def copy(self) -> StageProgress:
        return replace(self)

    def take(self, e: Event) -> None:
        """What a 'start', 'step', 'epoch' or 'end' event of this stage says of its progress; other
        kinds are the caller's."""
        if e.kind == "start":
            self.state, self.total, self.done = "running", e.total, 0
        elif e.kind == "step":  # within a slow epoch: progress only
            self.state, self.step, self.steps = "running", e.metrics["step"], e.metrics["steps"]
        elif e.kind == "epoch":
            self.state, self.done, self.total = "running", e.epoch, max(e.total, e.epoch)
            self.step = self.steps = 0
        elif e.kind == "end":
            self.state, self.done = "done", self.total


@dataclass(frozen=True)
class Ahead:
    """The job computing ahead of a queued one, as the queued page names it: what it computes and
    how far it has got."""

    config: RunConfig  # the configuration it computes now
    index: int  # which of its configurations that is
    count: int  # how many it has
    stage: str | None  # the stage computing now (None before its first event)
    progress: StageProgress  # that stage's epochs (or batches) done of its total
    seconds: float  # since it was started


@dataclass
class JobView:
    """A snapshot of a job, safe to read while the job goes on."""

    configs: tuple[RunConfig, ...]
    state: str  # queued, running, done, stopped, failed
    index: int  # the configuration being (or last) run
    stages: dict[str, StageProgress]
    history: list[dict]  # epoch entries of the configuration being run
    finished: list[str]  # keys of the configurations completed so far
    cached: list[str]  # the subset of ``finished`` that came straight from the cache
    error: str | None
    details: str | None  # a traceback, only for errors that are bugs rather than bad input
    seconds: float
    pid: int | None = None  # the process computing the job (None until it has one)
    notices: list[str] = field(default_factory=list)  # damaged cache entries found and recomputed
    ahead: int = 0  # while queued: the runs ahead of this job (computing, or queued before it)
    waiting: str | None = None  # while another process computes the same entry: what we wait for
    before: Ahead | None = None  # while queued: the job computing that this one waits for
    abandoned_after: float | None = None  # stopped because no page followed it for this many seconds

    @property
    def running(self) -> bool:
        """Not finished yet: computing, or queued to compute."""
        return self.state in ("queued", "running")

    @property
    def config(self) -> RunConfig:
        return self.configs[min(self.index, len(self.configs) - 1)]

    @property
    def published(self) -> bool:
        """Whether the configuration being run has its record in the cache already: a run is
        published before its sparsity profile, which then goes on as its last stage."""
        p = self.stages.get(PROFILE.name)
        return p is not None and p.state != "pending"


class Progress:
    """What one job's events have said: per configuration, its stages and epoch history; over the
    whole job, the damaged entries recomputed, the configurations served from the cache, and what
    it waits for. Not locked: its job reads and writes it under the job's own lock."""

    def __init__(self, config: RunConfig):
        self._notices: list[str] = []
        self._cached: list[str] = []
        self._waiting: str | None = None
        self.begin(config)

    def begin(self, config: RunConfig) -> None:
        """``config`` starts: its planned stages, all pending, and an empty history."""
        self._config = config
        self._stages = {s: StageProgress() for s in planned(config)}
        self._history: list[dict] = []

    def snapshot(self) -> dict:
        """Copies of what a :class:`JobView` shows, by its field names."""
        return dict(stages={k: v.copy() for k, v in self._stages.items()},
                    history=list(self._history), cached=list(self._cached), notices=list(self._notices),
                    waiting=self._waiting)

    def current(self) -> tuple[str | None, StageProgress]:
        """The stage computing now and a copy of its progress (:func:`current_stage`)."""
        return current_stage(self._stages)

    def record(self, e: Event) -> None:
        if e.kind == "waiting":  # another process computes this entry: its result is served after
            self._waiting = e.metrics.get("message", "waiting for another process computing this run")
            return
        self._waiting = None
        if e.kind == "damaged":  # a damaged cache entry: computed again, and the page says so
            self._notices.append(e.metrics.get("message", f"a damaged {e.stage} in the cache"))
            return
        if e.kind == "cached" and e.stage == "run":
            for s in self._stages.values():
                s.state = "cached"
            self._cached.append(self._config.key())
            return
        stage = e.stage
        if stage not in self._stages:  # an unplanned stage (the teacher's evaluation): in run order
            self._stages = insert_in_order(self._stages, stage)
        progress = self._stages[stage]
        if e.kind == "cached":
            progress.state = "cached"
            return
        progress.take(e)
        if e.kind == "epoch":
            if stage == "cut":  # the cut is one event
                progress.state = "done"
            if e.metrics:  # evaluation batches report progress only
                self._history.append({"phase": stage, **e.metrics})


def insert_in_order(stages: dict, new: str) -> dict:
    """``stages`` with ``new`` added at its place in the engine's stage order (last if unknown)."""
    order = [s.name for s in all_stages()]
    rank = {name: i for i, name in enumerate(order)}
    items = list(stages.items()) + [(new, StageProgress())]
    return dict(sorted(items, key=lambda kv: rank.get(kv[0], len(order))))


def current_stage(stages: dict[str, StageProgress]) -> tuple[str | None, StageProgress]:
    """The stage computing now and a copy of its progress: the running stage, else the last one
    begun (done or cached), else (None, nothing done)."""
    running = [k for k, v in stages.items() if v.state == "running"]
    begun = [k for k, v in stages.items() if v.state != "pending"]
    name = (running or begun or [None])[-1]
    if name is None:
        return None, StageProgress()
    return name, stages[name].copy()
