"""How many jobs compute at once, and the queue the others wait in, first come first served.

Named ``run_queue``, not ``queue``, so that it never stands in for the standard library's module.
"""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Callable

from deadwood import DeadwoodError

if TYPE_CHECKING:
    from .job import Job


def max_runs() -> int:
    """How many jobs compute at once: ``$DEADWOOD_MAX_RUNS``, default 1 (read at each use).

    A CPU run already uses every core it is given, so a second one at once only halves the speed of
    both (on a 2-core machine two runs at once take as long as one after the other, and each page
    waits for its result twice as long); a server with more cores, or GPUs, may raise it."""
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
