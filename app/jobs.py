"""Engine runs in a worker process, so a long run never blocks the page, nor the page the run.

A :class:`Job` takes immutable :class:`deadwood.RunConfig` objects fixed when the
user pressed Run and works through them one after another. The page only ever
*reads* a job (:meth:`Job.view`, a consistent copy taken under a lock) and may ask
it to stop; widget changes made meanwhile build new configurations and cannot
reach the running one, and every result lands in the engine's cache under its
own configuration's key. Nothing here imports Streamlit, so it is tested plainly.

Why a process: the server redraws every page that follows a job twice a second, and
each script run ended in a full garbage collection (``runner.postScriptGC``, now off
in the app's config). In a thread of the
server, training waited on all of that through the GIL: a watched run took 4-7x
as long, two watched runs about 50x (issue 19). In a worker process the server only
relays events. Starting one costs about 2 s (mostly importing torch), so
workers are long-lived: :func:`warm` starts two ahead of the first Run, a job that
takes the last idle worker starts a spare for the next, and a finished job hands
its worker back (up to :data:`IDLE_WORKERS` idle ones are kept).

How many jobs compute at once is bounded (:func:`max_runs`, ``$DEADWOOD_MAX_RUNS``, default 1: on
a 2-core machine two runs at once take as long as one after the other, and each page waits for its
result twice as long). The others wait in :data:`QUEUE`, first come first served, and their view says
how many runs are ahead of them. Every page that follows a job holds a :class:`Watch` with a token;
a page reloaded with that token (:func:`find`) follows the same job again.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable, Sequence

import deadwood
from deadwood import DeadwoodError, Event, RunConfig, RunStopped
from deadwood.stages import all_stages, planned
from deadwood.storage.files import default_cache_dir

ROOT = Path(__file__).resolve().parents[1]
IDLE_WORKERS = 2  # finished jobs' workers kept started (each holds torch: about 300 MB)


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

    @property
    def running(self) -> bool:
        """Not finished yet: computing, or queued to compute."""
        return self.state in ("queued", "running")

    @property
    def config(self) -> RunConfig:
        return self.configs[min(self.index, len(self.configs) - 1)]


class Job:
    """Runs ``configs`` in order: through ``deadwood.run`` in a worker process, or through ``runner``.

    Without ``runner``, each configuration is computed by ``deadwood.run`` in a worker
    process (see the module's docstring); a daemon thread of this process relays its
    events into the view. A ``runner`` (a stand-in with ``deadwood.run``'s signature:
    tests pass fakes that need not pickle) is called in that thread instead.
    ``cache_dir`` (default: ``$DEADWOOD_CACHE``, read now) is where results land.
    """

    def __init__(self, configs: Sequence[RunConfig], *, runner: Callable | None = None, cache_dir=None,
                 queue: "RunQueue | None" = None):
        if not configs:
            raise ValueError("a job needs at least one configuration")
        self.configs = tuple(configs)
        self._runner = runner
        self._queue = queue if queue is not None else QUEUE
        self._cache_dir = str(cache_dir if cache_dir is not None else default_cache_dir())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._worker: _Worker | None = None
        self._pid: int | None = os.getpid() if runner is not None else None
        self._watchers = 0  # pages following the job through watch()
        self._state, self._index = "queued", 0
        self._waiting: str | None = None
        self._stages: dict[str, StageProgress] = {}
        self._history: list[dict] = []
        self._notices: list[str] = []
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
                configs=self.configs, state=self._state, index=self._index,
                stages={k: StageProgress(v.done, v.total, v.state) for k, v in self._stages.items()},
                history=list(self._history), finished=list(self._finished), cached=list(self._cached),
                error=self._error, details=self._details,
                seconds=(self._t1 or time.perf_counter()) - self._t0, pid=self._pid,
                notices=list(self._notices), ahead=ahead or 0, waiting=self._waiting)

    # ---------------------------------------------------------------- worker
    def _reset_stages(self, config: RunConfig) -> None:
        self._stages = {s: StageProgress() for s in planned(config)}
        self._history = []

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
            _release(worker)

    def _run_all(self) -> None:
        runner = self._runner or self._take_worker().run
        for i, config in enumerate(self.configs):
            if self._stop.is_set():
                raise RunStopped("stopped by the user")
            with self._lock:
                self._index = i
                self._reset_stages(config)
            runner(config, on_event=self._on_event, cache_dir=self._cache_dir)
            with self._lock:
                self._finished.append(config.key())

    def _take_worker(self) -> "_Worker":
        worker = _acquire()
        with self._lock:
            self._worker, self._pid = worker, worker.pid
            if self._stop.is_set():  # stop() came before the worker did
                worker.request_stop()
        return worker

    def _on_event(self, event: Event) -> None:
        if self._stop.is_set():
            raise RunStopped("stopped by the user")
        with self._lock:
            self._record(event)

    def _record(self, e: Event) -> None:
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


class Watch:
    """One page's hold on a job that other pages may share (see :func:`watch`): the same
    ``configs`` and ``view()``; ``stop()`` lets go, and the job stops when the last page
    following it lets go (a queued job then leaves the queue). A page that let go sees the job as
    stopped from then on. ``token`` names this hold: a page reloaded with it (:func:`find`) takes
    the same hold again, so a reload neither loses the job nor counts as one more follower."""

    def __init__(self, job: Job):
        self.job, self.configs = job, job.configs
        self.token = secrets.token_urlsafe(8)
        self._left: JobView | None = None

    def view(self) -> JobView:
        return self._left or self.job.view()

    def stop(self) -> None:
        with _shared_lock:
            if self._left is not None:
                return
            self.job._watchers -= 1
            last = self.job._watchers <= 0
            if not last:
                self._left = replace(self.job.view(), state="stopped")
        if last:
            self.job.stop()  # this page now follows the job to its end


_shared_lock = threading.Lock()
_shared: dict[tuple, Job] = {}
_holds: dict[str, Watch] = {}  # token -> hold, for pages that come back (a reload)
KEEP_HOLDS = 256  # holds on finished jobs kept for a reload after the end; beyond it the oldest go


def watch(configs: Sequence[RunConfig], cache_dir=None, runner: Callable | None = None,
          holding: Watch | None = None) -> Watch:
    """Follow a job of ``configs``: the one already computing (or queued) for another page, else a new one.

    Two pages pressing Run on the same settings then share one computation (and its
    progress) instead of racing each other for the same cache entries. ``holding``: the hold this
    page already has, returned as it is when it follows that very job (Run pressed again while
    it is queued or computing attaches once, never queues twice). A ``runner`` computes a new job in
    a thread instead of the worker process (see :class:`Job`).
    """
    key = (tuple(c.key() for c in configs), str(cache_dir if cache_dir is not None else default_cache_dir()))
    with _shared_lock:
        for old in [k for k, job in _shared.items() if not job.joinable()]:
            del _shared[old]
        job = _shared.get(key)
        if holding is not None and holding.job is job and holding._left is None:
            return holding
        if job is None:
            job = _shared[key] = Job(configs, cache_dir=key[1], runner=runner)
        job._watchers += 1
        hold = Watch(job)
        _holds[hold.token] = hold
        finished = [t for t, h in _holds.items() if not h.job.joinable()]
        for t in finished[:max(0, len(_holds) - KEEP_HOLDS)]:
            del _holds[t]
    return hold


def find(token: str | None) -> Watch | None:
    """The hold named ``token`` (:attr:`Watch.token`), while this server process knows it; else None."""
    with _shared_lock:
        return _holds.get(token) if token else None


def max_runs() -> int:
    """How many jobs compute at once: ``$DEADWOOD_MAX_RUNS``, default 1 (read at each use).

    A CPU run already uses every core it is given, so a second one at once only halves the speed of
    both; a server with more cores, or GPUs, may raise it."""
    raw = os.environ.get("DEADWOOD_MAX_RUNS", "").strip()
    if not raw:
        return 1
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if limit < 1:
        raise DeadwoodError(f"DEADWOOD_MAX_RUNS must be a whole number of at least 1, got {raw!r}; "
                            "restart the app with another value")
    return limit


class RunQueue:
    """At most ``limit()`` jobs compute at once; the others wait here, first come first served."""

    def __init__(self, limit: Callable[[], int] = max_runs):
        self._limit = limit
        self._cond = threading.Condition()
        self._computing: list[Job] = []
        self._waiting: list[Job] = []

    def enter(self, job: Job, stopped: threading.Event) -> bool:
        """Wait until ``job`` may compute (True), or until ``stopped`` is set (False: it left the queue).
        A bad ``$DEADWOOD_MAX_RUNS`` raises DeadwoodError, which fails the job with its message."""
        limit = self._limit()
        with self._cond:
            self._waiting.append(job)
            try:
                while not (self._waiting[0] is job and len(self._computing) < limit):
                    if stopped.is_set():
                        return False
                    self._cond.wait()
                self._computing.append(job)
                return True
            finally:
                self._waiting.remove(job)
                self._cond.notify_all()  # the next in line may go, and every queued view moves up

    def leave(self, job: Job) -> None:
        with self._cond:
            self._computing.remove(job)
            self._cond.notify_all()

    def wake(self) -> None:
        """Let waiting jobs look again (one of them was asked to stop)."""
        with self._cond:
            self._cond.notify_all()

    def ahead(self, job: Job) -> int | None:
        """The jobs ahead of ``job``: those computing and those queued before it; None unless queued."""
        with self._cond:
            if job not in self._waiting:
                return None
            return len(self._computing) + self._waiting.index(job)

    def counts(self) -> tuple[int, int]:
        """(computing, queued) now."""
        with self._cond:
            return len(self._computing), len(self._waiting)


QUEUE = RunQueue()  # one per server process: every page's jobs


def _insert_in_order(stages: dict, new: str) -> dict:
    """``stages`` with ``new`` added at its place in the engine's stage order (last if unknown)."""
    order = [s.name for s in all_stages()]
    rank = {name: i for i, name in enumerate(order)}
    items = list(stages.items()) + [(new, StageProgress())]
    return dict(sorted(items, key=lambda kv: rank.get(kv[0], len(order))))


# ------------------------------------------------------------------ worker processes
class WorkerError(Exception):
    """A run failed in the worker: ``error`` is the message for the page, ``details`` a traceback or None."""

    def __init__(self, error: str, details: str | None = None):
        super().__init__(error)
        self.error, self.details = error, details


class _Worker:
    """A child process (``python -m app.jobs``) that runs one configuration at a time.

    A plain subprocess rather than ``multiprocessing``'s spawn: that one re-runs the parent's
    ``__main__`` in the child, and inside Streamlit ``__main__`` is the page script.
    Protocol on a private socket pair: the parent sends ``(config, cache_dir)``; the worker
    answers ``("event", Event)`` for each event, then one ``(outcome, error, details)`` with
    outcome 'done', 'stopped' or 'failed'. The parent may send 'stop' at any time: the worker
    looks for it at every event (raising RunStopped inside the run) and ignores it when idle.
    """

    def __init__(self):
        ours, theirs = socket.socketpair()
        env = dict(os.environ)  # this checkout first: the worker runs the same engine as the server
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen([sys.executable, "-m", "app.jobs", str(theirs.fileno())],
                                        pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.pid = self.process.pid
        self._send_lock = threading.Lock()  # a job's thread sends tasks, a page's thread may send 'stop'

    def alive(self) -> bool:
        return self.process.poll() is None

    def _send(self, message) -> None:
        with self._send_lock:
            self.conn.send(message)

    def request_stop(self) -> None:
        try:
            self._send("stop")
        except OSError:  # already gone: the job's thread reports it
            pass

    def run(self, config: RunConfig, on_event, cache_dir=None) -> None:
        """Like ``deadwood.run`` (without its return value: the page reads the run from the cache)."""
        stopped = False
        try:
            self._send((config, cache_dir))
            while True:
                kind, *rest = self.conn.recv()
                if kind == "event":
                    if not stopped:
                        try:
                            on_event(rest[0])
                        except RunStopped:  # the worker stops at its next event; read on to its answer
                            stopped = True
                            self.request_stop()
                    continue
                error, details = rest
                if kind == "stopped" or stopped:
                    raise RunStopped("stopped by the user")
                if kind == "failed":
                    raise WorkerError(error, details)
                return
        except (EOFError, OSError):
            try:
                code = self.process.wait(2)
            except subprocess.TimeoutExpired:
                code = None
            raise WorkerError(f"the worker process ended unexpectedly (exit code {code}); press Run to try "
                              "again") from None

    def close(self) -> None:
        try:
            self._send(None)
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
        self.conn.close()


def _prepare_default() -> None:
    """Load the embedded default's data while the worker waits for its first run: it imports
    scikit-learn (2-3 s), which a fresh default run otherwise counted as its data stage."""
    default = RunConfig()
    for split in ("train", "test"):
        try:
            deadwood.load_dataset(default.dataset, split, seed=default.seed)
        except DeadwoodError:  # the run that needs it will say what is wrong
            pass


def _serve(conn: Connection) -> None:
    """The worker's loop: run each configuration it is sent, reporting back through ``conn``."""

    def send(message) -> None:
        try:
            conn.send(message)
        except OSError:  # the server is gone: nobody is left to report to
            raise SystemExit(0) from None

    def on_event(event: Event) -> None:
        while conn.poll():
            if conn.recv() == "stop":
                raise RunStopped("stopped by the user")
        send(("event", event))

    _prepare_default()
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the server is gone
            return
        if task is None:
            return
        if task == "stop":  # came after the run it was meant for had ended
            continue
        config, cache_dir = task
        try:
            deadwood.run(config, on_event=on_event, cache_dir=cache_dir)
            answer = ("done", None, None)
        except RunStopped:
            answer = ("stopped", None, None)
        except DeadwoodError as e:
            answer = ("failed", str(e), None)
        except Exception as e:  # a bug, not bad input: the traceback goes to the details view
            answer = ("failed", f"unexpected {type(e).__name__}: {e}", traceback.format_exc())
        send(answer)


_pool_lock = threading.Lock()
_idle: list[_Worker] = []


def warm() -> None:
    """Start workers now, up to :data:`IDLE_WORKERS` idle ones, so that Run (even two pages' at
    once) does not wait for torch to import."""
    with _pool_lock:
        _idle[:] = [w for w in _idle if w.alive()]
        while len(_idle) < IDLE_WORKERS:
            _idle.append(_Worker())


def _acquire() -> _Worker:
    """An idle worker, or a new one; either way a spare is left starting for the next job."""
    with _pool_lock:
        _idle[:] = [w for w in _idle if w.alive()]
        worker = _idle.pop() if _idle else _Worker()
        if not _idle:  # a second page's Run need not wait for torch to import
            _idle.append(_Worker())
    return worker


def _release(worker: _Worker) -> None:
    with _pool_lock:
        if worker.alive() and len(_idle) < IDLE_WORKERS:
            _idle.append(worker)
            return
    worker.close()


if __name__ == "__main__":  # a worker: python -m app.jobs FD
    _serve(Connection(int(sys.argv[1])))
