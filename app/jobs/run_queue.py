"""How many jobs compute at once, the queue the others wait in (first come first served), and
how long a job may go unfollowed before it is stopped as abandoned.

An abandoned job (no page has polled it for :func:`abandon_after` seconds: its tabs were closed) is
stopped where the queue already waits, with no thread of its own: every queued job's thread looks
every :data:`CHECK_EVERY` seconds while it waits (:meth:`RunQueue.stop_abandoned`), and a computing
job looks at each of its own events (:meth:`app.jobs.job.Job.abandoned`). So a closed tab's run
never holds a queued one up for longer than that time plus one event of the run.

Named ``run_queue``, not ``queue``, so that it never stands in for the standard library's module.
"""
from __future__ import annotations

import os
import threading
import time
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


# Seconds without a follower's poll after which a job is stopped as abandoned. Not less: a browser
# slows the timers of a tab hidden for five minutes to about one a minute, and such a tab still follows.
ABANDON_AFTER = 90.0
CHECK_EVERY = 0.5  # seconds between a queued job's looks for abandoned jobs while it waits


def abandon_after() -> float:
    """Seconds after its last follower's last poll that a job is stopped as abandoned:
    ``$DEADWOOD_ABANDON_AFTER``, default :data:`ABANDON_AFTER` (read at each use).

    A page following a job polls it twice a second, and a page of the same session showing
    something else every few seconds (``app.runs``), so only a job whose tabs were all closed goes this
    long unfollowed. Tests shorten it."""
    raw = os.environ.get("DEADWOOD_ABANDON_AFTER", "").strip()
    if not raw:
        return ABANDON_AFTER
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise DeadwoodError(f"DEADWOOD_ABANDON_AFTER must be a number of seconds above 0, got {raw!r}; "
                            "restart the app with another value")
    return seconds


class RunQueue:
    """At most ``limit()`` jobs compute at once; the others wait here, first come first served.

    ``clock`` (default ``time.monotonic``) is the time the jobs' followers are marked with and
    abandonment is judged by; tests pass a fake one."""

    def __init__(self, limit: Callable[[], int] = max_runs, clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self.clock = clock
        self._cond = threading.Condition()
        self._computing: list[Job] = []
        self._waiting: list[Job] = []

    def enter(self, job: Job, stopped: threading.Event) -> bool:
        """Wait until ``job`` may compute (True), or until ``stopped`` is set (False: it left the queue).
        While it waits it stops the abandoned jobs ahead of it, and itself once abandoned
        (:meth:`stop_abandoned`, every :data:`CHECK_EVERY` s), so the queue moves on.
        A bad ``$DEADWOOD_MAX_RUNS`` raises DeadwoodError, which fails the job with its message."""
        limit = self._limit()
        with self._cond:
            self._waiting.append(job)
            try:
                while not (self._waiting[0] is job and len(self._computing) < limit):
                    if stopped.is_set():
                        return False
                    self._cond.wait(CHECK_EVERY)
                    self.stop_abandoned()
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

    def stop_abandoned(self) -> list[Job]:
        """Stop every job here, computing or queued, that no page has followed for its time
        (:meth:`app.jobs.job.Job.abandoned`), as Stop would: a computing one at its next event (its
        finished stages stay cached), a queued one leaves the queue. Returns the jobs stopped."""
        with self._cond:
            jobs = self._computing + self._waiting
        now = self.clock()
        stopped = [job for job in jobs if job.abandoned(now)]
        for job in stopped:
            job.abandon()
        return stopped

    def running_ahead(self, job: Job) -> Job | None:
        """While ``job`` is queued: the job computing now that it waits for (the earliest started); else None."""
        with self._cond:
            if job not in self._waiting or not self._computing:
                return None
            return self._computing[0]

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
