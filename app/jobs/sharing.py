"""Jobs shared between pages: one job per list of configurations, per server, and the holds
(:class:`Watch`) through which pages follow it, find it again after a reload, and let go.

The registry lives in the server process: a restarted server forgets it (finished runs are in the
cache anyway).
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import replace
from typing import Callable, Sequence

from deadwood import RunConfig
from deadwood.storage.files import default_cache_dir

from .job import Job
from .progress import JobView

KEEP_HOLDS = 256  # holds on finished jobs kept for a reload after the end; beyond it the oldest go


class Watch:
    """One page's hold on a job that other pages may share (see :func:`watch`): the same
    ``configs`` and ``view()``; ``stop()`` lets go, and the job stops when the last page
    following it lets go (a queued job then leaves the queue). A page that let go sees the job as
    stopped from then on. ``token`` names this hold: a page reloaded with it (:func:`find`) takes
    the same hold again, so a reload neither loses the job nor counts as one more follower.

    Each ``view()`` marks the job followed by this hold (:meth:`app.jobs.job.Job.follow`): a hold
    whose page stopped polling (its tab was closed) no longer keeps the job alive, and a job
    none of whose holds polled for :func:`app.jobs.run_queue.abandon_after` seconds is stopped."""

    def __init__(self, job: Job):
        self.job, self.configs = job, job.configs
        self.token = secrets.token_urlsafe(8)
        self._left: JobView | None = None

    @property
    def holding(self) -> bool:
        """Whether this page still follows its job (it has not let go)."""
        return self._left is None

    def view(self) -> JobView:
        if self._left is not None:
            return self._left
        self.job.follow(self.token)
        return self.job.view()

    def stop(self) -> None:
        with _shared_lock:
            if self._left is not None:
                return
            last = self.job.unfollow(self.token) <= 0
            if not last:
                self._left = replace(self.job.view(), state="stopped")
        if last:
            self.job.stop()  # this page now follows the job to its end


_shared_lock = threading.Lock()
_shared: dict[tuple, Job] = {}
_holds: dict[str, Watch] = {}  # token -> hold, for pages that come back (a reload)


def watch(configs: Sequence[RunConfig], cache_dir=None, runner: Callable | None = None,
          holding: Watch | None = None) -> Watch:
    """Follow a job of ``configs``: the one already computing (or queued) for another page, else a new one.

    Two pages pressing Run on the same settings then share one computation (and its
    progress) instead of racing each other for the same cache entries. ``holding``: the hold this
    page already has, returned as it is when it follows that very job (Run pressed again while
    it is queued or computing attaches once, never queues twice). A ``runner`` computes a new job in
    a thread instead of the worker process (see :class:`app.jobs.job.Job`).
    """
    key = (tuple(c.key() for c in configs), str(cache_dir if cache_dir is not None else default_cache_dir()))
    with _shared_lock:
        for old in [k for k, job in _shared.items() if not job.joinable()]:
            del _shared[old]
        job = _shared.get(key)
        if holding is not None and holding.job is job and holding.holding:
            return holding
        if job is None:
            job = _shared[key] = Job(configs, cache_dir=key[1], runner=runner)
        hold = Watch(job)
        job.follow(hold.token)
        _holds[hold.token] = hold
        finished = [t for t, h in _holds.items() if not h.job.joinable()]
        for t in finished[:max(0, len(_holds) - KEEP_HOLDS)]:
            del _holds[t]
    return hold


def find(token: str | None) -> Watch | None:
    """The hold named ``token`` (:attr:`Watch.token`), while this server process knows it; else None."""
    with _shared_lock:
        return _holds.get(token) if token else None
