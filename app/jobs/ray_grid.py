"""The Compare page's grid on Ray: a ``runner`` for :class:`app.jobs.job.Job` that computes every
cache entry of its configurations on the engine's sweep executor (:mod:`deadwood.bench.executor`,
the one module that imports Ray; nothing here does), then reads each run from the cache.

The server has no command line, so two environment variables ask for it: ``$DEADWOOD_WORKERS``
(a whole number; more than 1 starts a local Ray with that many workers) and
``$DEADWOOD_RAY_ADDRESS`` (join that cluster).
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

from deadwood import RunConfig, run
from deadwood.bench.executor import RayExecutor, Task
from deadwood.errors import ClusterError
from deadwood.events import emit
from deadwood.methods import get_method
from deadwood.stages import FINETUNE, TEACHER

WORKERS_ENV, ADDRESS_ENV = "DEADWOOD_WORKERS", "DEADWOOD_RAY_ADDRESS"


def requested() -> bool:
    """Whether the environment asks for Ray (``$DEADWOOD_WORKERS`` other than 1, or
    ``$DEADWOOD_RAY_ADDRESS``); a malformed value counts, so :func:`from_environment` names it."""
    return (os.environ.get(WORKERS_ENV, "").strip() not in ("", "1")
            or bool(os.environ.get(ADDRESS_ENV, "").strip()))


def from_environment() -> Optional[RayExecutor]:
    """The executor ``$DEADWOOD_WORKERS`` (a whole number; >1 starts a local Ray) or
    ``$DEADWOOD_RAY_ADDRESS`` (join that cluster) ask for, or None (one process, no Ray)."""
    raw = os.environ.get(WORKERS_ENV, "").strip() or "1"
    try:
        workers = int(raw)
    except ValueError:
        raise ClusterError(f"${WORKERS_ENV} must be a whole number >= 1, got {raw!r}") from None
    address = os.environ.get(ADDRESS_ENV, "").strip() or None
    if workers < 1:
        raise ClusterError(f"${WORKERS_ENV} must be a whole number >= 1, got {raw!r}")
    if workers == 1 and address is None:
        return None
    return RayExecutor(workers, address=address)


def _stages(configs: Sequence[RunConfig]) -> dict[str, Optional[str]]:
    """The stage each kind of task reports as: the teacher; for the solves, the own Stage 1 of the
    method whose solve is cached (None when no configuration has one); for the runs, the fine-tune."""
    solving = (get_method(n.config.method).stage for c in configs for n in Task("run", c).needs()
               if n.kind == "solve")
    solve = next(solving, None)
    return {"teacher": TEACHER.name, "solve": solve.name if solve else None, "run": FINETUNE.name}


def batch_runner(configs: Sequence[RunConfig], executor: Optional[RayExecutor] = None):
    """A ``runner`` for :class:`app.jobs.job.Job` (``runner(config, on_event=, cache_dir=)``).

    Its first call computes every entry of ``configs`` on ``executor`` (default:
    :func:`from_environment`, read then, so a bad setting ends the job with its message) and every
    call then reads its run from the cache through :func:`deadwood.run`; with no executor it is
    :func:`deadwood.run` itself. Progress goes out as events, one stage per kind of task (the
    teacher, the method's own Stage 1 for the solves, the fine-tune for the runs): 'start' with
    the count, 'epoch' as tasks finish (and every :data:`deadwood.bench.executor.POLL_SECONDS`, so
    a Stop button is honoured while waiting), 'end'."""
    state = {"done": False}

    def runner(config, *, on_event=None, cache_dir=None):
        if not state["done"]:
            ex = executor if executor is not None else from_environment()
            if ex is not None:
                stage_of = _stages(configs)

                def on_progress(kind, done, total, task, what, error=None):
                    if what == "start":
                        emit(on_event, "start", stage_of[kind], total=total)
                        return
                    emit(on_event, "epoch", stage_of[kind], done, total)
                    if done == total:
                        emit(on_event, "end", stage_of[kind])

                with ex:
                    outcome = ex.compute(configs, cache_dir, on_progress)
                if outcome.failed:
                    more = f" (and {len(outcome.failed) - 1} more)" if len(outcome.failed) > 1 else ""
                    raise ClusterError(f"{outcome.failed[0]}{more}; the finished runs are cached")
            state["done"] = True
        return run(config, on_event=on_event, cache_dir=cache_dir)

    return runner
