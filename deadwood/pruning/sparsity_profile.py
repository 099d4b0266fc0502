"""The sparsity profile: accuracy right after one global cut, at every κ of a dense grid.

From one Stage 1 solve, cut the solved student (and, for comparison, the teacher's own weights:
what plain global magnitude pruning cuts) at each κ, and measure clean accuracy and robust
accuracy under a cheap attack on a fixed test subset. This is the "sparsity cliff" of the
related work: where accuracy falls away as one cuts deeper. The cut is the run's own
(:func:`deadwood.pruning.cut.cut` with ``config.cut`` and the collapse guard), so at the run's κ the
student's clean value is the record's one-shot accuracy on the same samples. No fine-tuning
happens here: every number is "before fine-tuning".
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from .cut import cut
from ..data.datasets import ArrayDataset
from ..errors import ConfigError
from .masks import magnitudes, max_sparsity, prunable
from ..robustness.accuracy import accuracy

ATTACK = "fgsm"  # cheap: one gradient step per sample and κ (named on the chart)
SAMPLES = 500  # test samples per point (the default of deadwooding.profile_samples); a curve to look at


def default_sparsities() -> list[float]:
    """46 values in [0, 0.995]: every 0.05 up to 0.85, then every 0.005 (where the cliff is)."""
    return sorted({round(float(k), 4) for k in [*np.linspace(0, 0.85, 18), *np.linspace(0.86, 0.995, 28)]})


def _check(sparsities: Sequence[float]) -> list[float]:
    out = []
    for k in sparsities:
        if not (isinstance(k, (int, float)) and not isinstance(k, bool) and 0 <= k < 1):
            raise ConfigError(f"every profile sparsity must be in [0, 1), got {k!r}")
        out.append(float(k))
    if not out:
        raise ConfigError("the sparsity profile needs at least one sparsity")
    return sorted(set(out))


def _curve(model: nn.Module, config, sparsities: list[float], data: ArrayDataset,
           attack: str, epsilon: float, seed: int) -> dict:
    from .. import robustness

    scores = magnitudes(model)
    clean, robust = [], []
    pruned = copy.deepcopy(model).eval()  # one copy; its weights are restored before each cut
    weights, original = prunable(pruned), {n: p.detach().clone() for n, p in prunable(model).items()}
    for k in sparsities:
        mask, _ = cut(scores, dataclasses.replace(config, sparsity=k))
        with torch.no_grad():
            for n, p in weights.items():
                p.copy_(original[n])
            mask.apply(pruned)
        clean.append(accuracy(pruned, data))
        res = robustness.evaluate(pruned, data, attack, [epsilon], seed=seed, checks=False, warn=False)
        robust.append(res["accuracy"][res["epsilons"].index(epsilon)])
    return {"clean": clean, "robust": robust}


def sparsity_profile(student: nn.Module, teacher: nn.Module, test: ArrayDataset, config, *,
                     sparsities: Optional[Sequence[float]] = None, samples: Optional[int] = SAMPLES,
                     attack: str = ATTACK) -> dict:
    """Clean and robust (``attack`` at ``config.epsilon``) accuracy after one cut at each κ of
    ``sparsities`` (default :func:`default_sparsities`, plus the run's own κ), for the solved
    ``student`` and for the ``teacher``, on ``samples`` test samples (all when None, a fixed
    subset from ``config.seed`` otherwise). Returns the record's ``sparsity_profile``::

        {"sparsities": [...], "attack": ..., "epsilon": ..., "samples": n,
         "student": {"clean": [...], "robust": [...]}, "teacher": {"clean": [...], "robust": [...]}}
    """
    grid = _check(list(sparsities if sparsities is not None else default_sparsities()) + [config.sparsity])
    top = max_sparsity({n: p.numel() for n, p in prunable(student).items()}, config.min_keep)
    grid = [k for k in grid if k <= top or k == config.sparsity]  # a small model cannot reach 0.995
    data = test.subset(samples, config.seed)
    return {"sparsities": grid, "attack": attack, "epsilon": float(config.epsilon), "samples": len(data),
            "student": _curve(student, config, grid, data, attack, float(config.epsilon), config.seed),
            "teacher": _curve(teacher, config, grid, data, attack, float(config.epsilon), config.seed)}


def at(profile: dict, sparsity: float) -> dict:
    """The profile's numbers at the grid point nearest ``sparsity``: {"sparsity", "student", "teacher"}."""
    if not 0 <= sparsity < 1:
        raise ConfigError(f"sparsity must be in [0, 1), got {sparsity!r}")
    ks = profile["sparsities"]
    i = min(range(len(ks)), key=lambda j: abs(ks[j] - sparsity))
    return {"sparsity": ks[i], **{who: {m: profile[who][m][i] for m in ("clean", "robust")}
                                  for who in ("student", "teacher")}}
