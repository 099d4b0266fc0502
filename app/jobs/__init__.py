"""The app's runs: every run the app computes is a job here, computed outside the page and
followed by the pages. Nothing here imports Streamlit, so it is tested plainly; the pages only
show what a job holds (:mod:`app.runs` draws it).

- :mod:`.progress`: what a job's events say (stage bars, epoch history, notices) and
  :class:`JobView`, the copy a page reads.
- :mod:`.run_queue`: how many jobs compute at once (``$DEADWOOD_MAX_RUNS``) and :data:`QUEUE`,
  where the others wait, first come first served; how long a job may go unfollowed
  (``$DEADWOOD_ABANDON_AFTER``, 90 s) before it is stopped as abandoned.
- :mod:`.worker`: the worker processes that run ``deadwood.run``, and their pool.
- :mod:`.job`: :class:`Job`, configurations computed one after another, read and stopped by pages;
  its followers (one poll mark per page hold) and whether it is abandoned.
- :mod:`.sharing`: one job per configuration list and server, the pages' holds on it
  (:class:`Watch`), found again after a reload (:func:`find`).
- :mod:`.analysis`: :class:`Analysis`, a lens's or the explorer's computation that a job runs in
  place of a configuration, :data:`ANALYSES` (the one list of them) and their results on disk,
  stored without pickle; :mod:`.analyses` holds the functions themselves.
- :mod:`.ray_grid`: the Compare page's grid on Ray (not imported here: only that page's
  Run needs it).

It may import the engine (``deadwood``; ``ray_grid`` also ``deadwood.bench.executor``), never
Streamlit nor the rest of the app. Within the package the order is progress, run_queue, worker,
job, sharing, analyses, analysis, ray_grid: each imports only modules before it (a worker reaches
:mod:`.analysis` only through the task it is sent, a job only through the task it is given).
"""
from .progress import Ahead, JobView, StageProgress
from .run_queue import QUEUE, RunQueue, abandon_after, max_runs
from .worker import IDLE_WORKERS, WorkerError, warm
from .job import Job
from .sharing import KEEP_HOLDS, Watch, find, watch
from .analysis import ANALYSES, Analysis

__all__ = ["ANALYSES", "Analysis", "IDLE_WORKERS", "KEEP_HOLDS", "QUEUE", "Ahead", "Job", "JobView", "RunQueue",
           "StageProgress", "Watch", "WorkerError", "abandon_after", "find", "max_runs", "warm", "watch"]
