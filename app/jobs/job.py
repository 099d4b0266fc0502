"""A :class:`Job`: a list of configurations computed one after another, which pages read and may stop.

A job takes immutable :class:`deadwood.RunConfig` objects fixed when the user pressed Run. The page
only ever *reads* a job (:meth:`Job.view`, a consistent copy taken under the job's lock) and may ask
it to stop; widget changes made meanwhile build new configurations and cannot reach the running
one, and every result lands in the engine's cache under its own configuration's key.

Pages follow a job (:meth:`Job.follow`, at each poll, one mark per page hold): a job whose
followers have all gone quiet for :func:`app.jobs.run_queue.abandon_after` seconds (their tabs were
closed) is abandoned, and stopped as Stop stops it: by its own thread at its next event, or by a
queued job's thread looking while it waits (:meth:`app.jobs.run_queue.RunQueue.stop_abandoned`).
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Callable, Sequence

from deadwood import DeadwoodError, Event, RunConfig, RunStopped
from deadwood.storage.files import default_cache_dir

from .progress import Ahead, JobView, Progress
from .run_queue import QUEUE, RunQueue, abandon_after
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

    Followers are the page holds that poll it (:meth:`follow`); a job that has had followers and
    none has polled for its time (:func:`app.jobs.run_queue.abandon_after`, read when it starts) is
    :meth:`abandoned` and gets stopped. A job nobody ever followed (tests, scripts) never is.
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
        self._followers: dict[str, float] = {}  # hold token -> its last poll, on the queue's clock
        self._patience: float | None = None  # abandon_after(), read when the job starts
        self._abandoned = False
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

    def abandon(self) -> None:
        """Stop the job as abandoned (no page followed it for its time): as :meth:`stop`, and its
        view says why."""
        with self._lock:
            self._abandoned = True
        self.stop()

    def joinable(self) -> bool:
        """Whether another page may follow this job: it runs and nobody asked it to stop."""
        return self._thread.is_alive() and not self._stop.is_set()

    def wait(self, timeout: float | None = None) -> JobView:
        self._thread.join(timeout)
        return self.view()

    def view(self) -> JobView:
        ahead = self._queue.ahead(self)
        first = self._queue.running_ahead(self) if ahead is not None else None
        before = first.brief() if first is not None else None
        with self._lock:
            return JobView(
                configs=self.configs, state=self._state, index=self._index, finished=list(self._finished),
                error=self._error, details=self._details,
                seconds=(self._t1 or time.perf_counter()) - self._t0, pid=self._pid,
                ahead=ahead or 0, before=before,
                abandoned_after=self._patience if self._abandoned else None, **self._progress.snapshot())

    def brief(self) -> Ahead:
        """What a page queued behind this job says of it: its configuration and current stage."""
        with self._lock:
            stage, progress = self._progress.current()
            return Ahead(config=self.configs[self._index], index=self._index, count=len(self.configs),
                         stage=stage, progress=progress, seconds=time.perf_counter() - self._t0)

    # ---------------------------------------------------------------- followers
    @property
    def watchers(self) -> int:
        """How many page holds follow this job (quiet ones included)."""
        with self._lock:
            return len(self._followers)

    def follow(self, token: str) -> None:
        """The page hold ``token`` follows this job, as of now: called at each of its polls."""
        now = self._queue.clock()
        with self._lock:
            self._followers[token] = now

    def unfollow(self, token: str) -> int:
        """The page hold ``token`` lets go; returns how many holds still follow it and polled within
        the job's time (quiet ones are not counted: they would leave it abandoned)."""
        now = self._queue.clock()
        with self._lock:
            self._followers.pop(token, None)
            return sum(1 for t in self._followers.values()
                       if self._patience is None or now - t <= self._patience)

    def abandoned(self, now: float | None = None) -> bool:
        """Whether to stop this job as abandoned: it is not stopped yet, it has had followers, and
        none has polled for longer than its time. ``now`` on the queue's clock (default: now)."""
        now = self._queue.clock() if now is None else now
        with self._lock:
            if self._patience is None or not self._followers or self._abandoned:
                return False
            quiet = now - max(self._followers.values())
        return quiet > self._patience and self.joinable()

    # ---------------------------------------------------------------- the job's thread
    def _work(self) -> None:
        state, error, details = "done", None, None
        try:
            patience = abandon_after()  # a bad value fails the job here, with its message
            with self._lock:
                self._patience = patience
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
        if self.abandoned():  # every tab following it was closed: stop here, as Stop would
            self.abandon()
        if self._stop.is_set():
            raise RunStopped("stopped by the user")
        with self._lock:
            self._progress.record(event)
