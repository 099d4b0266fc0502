"""A :class:`Job`: a list of configurations computed one after another, which pages read and may stop.

A job takes immutable :class:`deadwood.RunConfig` objects fixed when the user pressed Run. The page
only ever *reads* a job (:meth:`Job.view`, a consistent copy taken under the job's lock) and may ask
it to stop; widget changes made meanwhile build new configurations and cannot reach the running
one, and every result lands in the engine's cache under its own configuration's key.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Callable, Sequence

from deadwood import DeadwoodError, Event, RunConfig, RunStopped
from deadwood.storage.files import default_cache_dir

from .progress import JobView, Progress
from .run_queue import QUEUE, RunQueue
from .worker import Worker, WorkerError, acquire, release


class Job:
    """Runs ``configs`` in order: through ``deadwood.run`` in a worker process, or through ``runner``.

    Without ``runner``, each configuration is computed by ``deadwood.run`` in a worker process
    (:mod:`app.jobs.worker`); a daemon thread of this process waits for its turn in ``queue``
    (default: the server's :data:`app.jobs.run_queue.QUEUE`) and relays the worker's events into
    the view. A ``runner`` (a stand-in with ``deadwood.run``'s signature: tests pass fakes that need
    not pickle, the Compare page a grid on Ray) is called in that thread instead.
    ``cache_dir`` (default: ``$DEADWOOD_CACHE``, read now) is where results land.
    A configuration may also be an :class:`app.jobs.analysis.Analysis`: it names itself
    (``key``), computes itself in the worker (``compute``) and reads its events (``progress_type``).
    """

    def __init__(self, configs: Sequence[RunConfig], *, runner: Callable | None = None, cache_dir=None,
                 queue: RunQueue | None = None):
        if not configs:
            raise ValueError("a job needs at least one configuration")
        self.configs = tuple(configs)
        self._runner = runner
        self._queue = queue if queue is not None else QUEUE
        self._cache_dir = str(cache_dir if cache_dir is not None else default_cache_dir())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._worker: Worker | None = None
        self._pid: int | None = os.getpid() if runner is not None else None
        self._watchers = 0  # pages following the job (app.jobs.sharing)
        self._state, self._index = "queued", 0
        # an analysis (app.jobs.analysis) brings its own reader of events; a configuration uses Progress
        self._progress = getattr(self.configs[0], "progress_type", Progress)(self.configs[0])
        self._finished: list[str] = []
        self._error: str | None = None
        self._details: str | None = None
        self._t0 = time.perf_counter()
        self._t1: float | None = None
        self._thread = threading.Thread(target=self._work, name="deadwood-job", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask the run to stop at its next event; finished work (teacher, earlier runs) is kept."""
        self._stop.set()
        self._queue.wake()  # a queued job leaves the queue now
        with self._lock:
            if self._worker is not None:
                self._worker.request_stop()

    def joinable(self) -> bool:
        """Whether another page may follow this job: it runs and nobody asked it to stop."""
        return self._thread.is_alive() and not self._stop.is_set()

    def wait(self, timeout: float | None = None) -> JobView:
        self._thread.join(timeout)
        return self.view()

    def view(self) -> JobView:
        ahead = self._queue.ahead(self)
        with self._lock:
            return JobView(
                configs=self.configs, state=self._state, index=self._index, finished=list(self._finished),
                error=self._error, details=self._details,
                seconds=(self._t1 or time.perf_counter()) - self._t0, pid=self._pid,
                ahead=ahead or 0, **self._progress.snapshot())

    # ---------------------------------------------------------------- followers
    @property
    def watchers(self) -> int:
        """How many pages follow this job."""
        with self._lock:
            return self._watchers

    def add_watcher(self) -> None:
        """One more page follows this job."""
        with self._lock:
            self._watchers += 1

    def drop_watcher(self) -> int:
        """One page lets go of this job; returns how many still follow it."""
        with self._lock:
            self._watchers -= 1
            return self._watchers

    # ---------------------------------------------------------------- the job's thread
    def _work(self) -> None:
        state, error, details = "done", None, None
        try:
            if not self._queue.enter(self, self._stop):
                raise RunStopped("stopped while queued")
            with self._lock:
                self._state = "running"
            try:
                self._run_all()
            finally:
                self._queue.leave(self)
        except RunStopped:
            state = "stopped"
        except WorkerError as e:  # already worded in the worker
            state, error, details = "failed", e.error, e.details
        except DeadwoodError as e:
            state, error = "failed", str(e)
        except Exception as e:  # a bug, not bad input: keep the traceback for the details view
            state, error = "failed", f"unexpected {type(e).__name__}: {e}"
            details = traceback.format_exc()
        with self._lock:
            self._state, self._error, self._details = state, error, details
            self._t1 = time.perf_counter()
            worker, self._worker = self._worker, None
        if worker is not None:
            release(worker)

    def _run_all(self) -> None:
        runner = self._runner or self._take_worker().run
        for i, config in enumerate(self.configs):
            if self._stop.is_set():
                raise RunStopped("stopped by the user")
            with self._lock:
                self._index = i
                self._progress.begin(config)
            runner(config, on_event=self._on_event, cache_dir=self._cache_dir)
            with self._lock:
                self._finished.append(config.key())

    def _take_worker(self) -> Worker:
        worker = acquire()
        with self._lock:
            self._worker, self._pid = worker, worker.pid
            if self._stop.is_set():  # stop() came before the worker did
                worker.request_stop()
        return worker

    def _on_event(self, event: Event) -> None:
        if self._stop.is_set():
            raise RunStopped("stopped by the user")
        with self._lock:
            self._progress.record(event)
