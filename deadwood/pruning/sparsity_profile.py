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
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .cut import cuts
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


# The rule that sizes the default profile. Per test image and κ the profile cuts and measures two
# networks (the solved student and the teacher): a forward pass and an FGSM step each, at the
# evaluation's batch size. A training image of the solve costs more: the student's clean and
# adversarial halves forward and back, the teacher forward, an FGSM step, at batch 64. On the embedded
# default (46 cuts × 360 images × 2 networks = 33,120 attacked images against 15 epochs × 1,437 =
# 21,555 solve images) the profile took about 1.3 s against the solve's 1.6 s (docs/benchmarks.md):
# an attacked image costs about half a solve image, on any network, since both are passes through it.
# So the profile attacks at most SOLVE_SHARE images per solve image: about 0.85 of the solve's time.
SOLVE_SHARE = 1.6
MIN_SAMPLES = 20  # a floor for a curve worth drawing (above the budget only on a solve of a few hundred images)


def profile_grid(config, sizes: dict, sparsities: Optional[Sequence[float]] = None) -> list[float]:
    """The κ values the profile cuts at: ``sparsities`` (default :func:`default_sparsities`) and the run's
    own κ, without those above what the collapse guard lets a model of these layer ``sizes`` reach."""
    grid = _check(list(sparsities if sparsities is not None else default_sparsities()) + [config.sparsity])
    top = max_sparsity(sizes, config.min_keep)
    return [k for k in grid if k <= top or k == config.sparsity]  # a small model cannot reach 0.995


def profile_samples(config, sizes: dict, train_images: int, test_images: int) -> int:
    """How many test samples the profile of a run of ``config`` measures at every cut: the one rule.

    ``deadwooding.profile_samples`` (0: no profile), at most the test split, and at most
    ``SOLVE_SHARE × solve epochs × train_images / (2 × cuts)``: the profile attacks (2 networks ×
    cuts × samples) at most 1.6 times as many images as the solve trains on, which keeps its time
    under the solve's (see :data:`SOLVE_SHARE`), but never fewer than :data:`MIN_SAMPLES`. The cuts
    are :func:`profile_grid` for layer ``sizes``, so the rule reads the model's size and the data's,
    and trains nothing."""
    asked = config.deadwooding.profile_samples
    if not asked:
        return 0
    cuts = len(profile_grid(config, sizes))
    budget = int(SOLVE_SHARE * config.deadwooding.epochs * train_images / (2 * cuts))
    return min(asked, test_images, max(budget, MIN_SAMPLES))


def _cut_and_measure(pruned: nn.Module, original: dict, cut_at, k: float, data: ArrayDataset,
                     attack: str, epsilon: float, seed: int) -> tuple[float, float]:
    """Clean and robust accuracy of the weights ``original`` cut at κ = ``k`` by ``cut_at``
    (:func:`deadwood.pruning.cut.cuts` of their magnitudes), written into ``pruned``."""
    from .. import robustness

    mask, _ = cut_at(k)
    with torch.no_grad():
        for n, p in prunable(pruned).items():
            p.copy_(original[n])
        mask.apply(pruned)
    clean = accuracy(pruned, data)
    res = robustness.evaluate(pruned, data, attack, [epsilon], seed=seed, checks=False, warn=False)
    return clean, res["accuracy"][res["epsilons"].index(epsilon)]


def sparsity_profile(student: nn.Module, teacher: nn.Module, test: ArrayDataset, config, *,
                     sparsities: Optional[Sequence[float]] = None, samples: Optional[int] = SAMPLES,
                     attack: str = ATTACK, progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Clean and robust (``attack`` at ``config.epsilon``) accuracy after one cut at each κ of
    :func:`profile_grid` (``sparsities``, default :func:`default_sparsities`, plus the run's own κ),
    for the solved ``student`` and for the ``teacher``, on ``samples`` test samples (all when None,
    a fixed subset from ``config.seed`` otherwise). ``progress(done, total)`` is called after each κ
    (both networks cut and measured). Returns the record's ``sparsity_profile``::

        {"sparsities": [...], "attack": ..., "epsilon": ..., "samples": n,
         "student": {"clean": [...], "robust": [...]}, "teacher": {"clean": [...], "robust": [...]}}
    """
    grid = profile_grid(config, {n: p.numel() for n, p in prunable(student).items()}, sparsities)
    data = test.subset(samples, config.seed)
    eps = float(config.epsilon)
    curves = {}
    for who, model in (("student", student), ("teacher", teacher)):
        # one copy per network; its weights are restored before each cut
        original = {n: p.detach().clone() for n, p in prunable(model).items()}
        curves[who] = (copy.deepcopy(model).eval(), original, cuts(magnitudes(model), config))
    out = {who: {"clean": [], "robust": []} for who in curves}
    for i, k in enumerate(grid):
        for who, (pruned, original, cut_at) in curves.items():
            clean, robust = _cut_and_measure(pruned, original, cut_at, k, data, attack, eps, config.seed)
            out[who]["clean"].append(clean)
            out[who]["robust"].append(robust)
        if progress is not None:
            progress(i + 1, len(grid))
    return {"sparsities": grid, "attack": attack, "epsilon": eps, "samples": len(data), **out}


def at(profile: dict, sparsity: float) -> dict:
    """The profile's numbers at the grid point nearest ``sparsity``: {"sparsity", "student", "teacher"}."""
    if not 0 <= sparsity < 1:
        raise ConfigError(f"sparsity must be in [0, 1), got {sparsity!r}")
    ks = profile["sparsities"]
    i = min(range(len(ks)), key=lambda j: abs(ks[j] - sparsity))
    return {"sparsity": ks[i], **{who: {m: profile[who][m][i] for m in ("clean", "robust")}
                                  for who in ("student", "teacher")}}
