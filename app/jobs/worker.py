"""Worker processes: each computes one configuration at a time through ``deadwood.run``, and a
small pool keeps them started between jobs.

A run computes outside the server process so that pages redrawing twice a second never hold it up
through the GIL (docs/architecture.md, "Runs in the app", has the measurements). Starting a worker
costs about 2 s, mostly importing torch, so workers are long-lived: :func:`warm` starts
:data:`IDLE_WORKERS` ahead of the first Run, :func:`acquire` leaves a spare starting when it takes
the last idle one, and :func:`release` keeps a finished job's worker for the next.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

import torch

import deadwood
from deadwood import DeadwoodError, Event, RunConfig, RunStopped, robustness

ROOT = Path(__file__).resolve().parents[2]  # the checkout this server runs from
IDLE_WORKERS = 2  # finished jobs' workers kept started (each holds torch: about 300 MB)


class WorkerError(Exception):
    """A run failed in the worker: ``error`` is the message for the page, ``details`` a traceback or None."""

    def __init__(self, error: str, details: str | None = None):
        super().__init__(error)
        self.error, self.details = error, details


class Worker:
    """A child process (``python -m app.jobs FD``) that runs one configuration at a time.

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


# ------------------------------------------------------------------ inside the worker process
def _prepare_default() -> None:
    """While the worker waits for its first run, do what that run would otherwise count as its own
    time: load the embedded default's data (it imports scikit-learn, 2-3 s), build one optimiser
    (torch's first imports its compiler stack, torch._dynamo: about 1 s) and import foolbox, the
    library of every record's PGD evaluation (about 0.4 s on an idle 2-core machine)."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    default = RunConfig()
    for split in ("train", "test"):
        try:
            deadwood.load_dataset(default.dataset, split, seed=default.seed)
        except DeadwoodError:  # the run that needs it will say what is wrong
            pass
    robustness.import_backend("pgd")


def serve(conn: Connection) -> None:
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
        compute = getattr(config, "compute", None)  # an analysis (app.jobs.analysis) computes itself
        try:
            if compute is not None:
                compute(on_event=on_event, cache_dir=cache_dir)
            else:
                deadwood.run(config, on_event=on_event, cache_dir=cache_dir)
            answer = ("done", None, None)
        except RunStopped:
            answer = ("stopped", None, None)
        except DeadwoodError as e:
            answer = ("failed", str(e), None)
        except Exception as e:  # a bug, not bad input: the traceback goes to the details view
            answer = ("failed", f"unexpected {type(e).__name__}: {e}", traceback.format_exc())
        send(answer)


# ------------------------------------------------------------------ the pool, in the server
_pool_lock = threading.Lock()
_idle: list[Worker] = []


def warm() -> None:
    """Start workers now, up to :data:`IDLE_WORKERS` idle ones, so that Run (even two pages' at
    once) does not wait for torch to import."""
    with _pool_lock:
        _idle[:] = [w for w in _idle if w.alive()]
        while len(_idle) < IDLE_WORKERS:
            _idle.append(Worker())


def acquire() -> Worker:
    """An idle worker, or a new one; either way a spare is left starting for the next job."""
    with _pool_lock:
        _idle[:] = [w for w in _idle if w.alive()]
        worker = _idle.pop() if _idle else Worker()
        if not _idle:  # a second page's Run need not wait for torch to import
            _idle.append(Worker())
    return worker


def release(worker: Worker) -> None:
    """Keep a finished job's worker for the next one (up to :data:`IDLE_WORKERS` idle), or close it."""
    with _pool_lock:
        if worker.alive() and len(_idle) < IDLE_WORKERS:
            _idle.append(worker)
            return
    worker.close()
