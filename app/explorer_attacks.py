"""The robustness explorer's attacks, as an analysis job (:mod:`app.jobs.analysis`): the attacks
themselves are :mod:`deadwood.robustness`'s, called by :func:`app.jobs.analyses.explore` in a worker
process; the result is kept by the finished run's configuration and the attack's settings, so
revisiting a combination is instant (:mod:`app.computed` serves or starts it).
"""
from __future__ import annotations

import deadwood

from .jobs import Analysis


def task(config: deadwood.RunConfig, attack: str, epsilon: float, samples: int) -> Analysis:
    """The job that attacks ``config``'s dense teacher and pruned model: its result holds
    ``examples``, ``recall`` (the pair's evaluation) and ``security`` (both security curves)."""
    return Analysis.of("explore", {"config": config, "attack": attack, "epsilon": float(epsilon),
                                   "samples": int(samples)},
                       label=f"{attack} at ε = {epsilon:g} against both models")
