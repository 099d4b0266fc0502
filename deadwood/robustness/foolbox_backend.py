"""foolbox 3, wrapped: the one module that imports it.

foolbox is imported on first use, because importing it (scipy.ndimage, git, requests) adds about
0.3 s to every CLI start-up. :data:`BUILDERS` maps each attack name that foolbox runs to its
foolbox attack; :func:`fixed` and :func:`minimizing` run one batch the way the attack kinds
(:mod:`.kinds`) need it.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Optional

import torch
from torch import nn

from .attacking import seeded
from .specs import distance


@functools.cache
def _foolbox():
    """foolbox, imported on first use; its import-time scipy deprecation notice is not ours to show."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import foolbox
        import foolbox.attacks  # noqa: F401
    return foolbox


def _pgd_size(steps: int, step_size: Optional[float]) -> dict:
    return {"rel_stepsize": 2.5 / steps} if step_size is None else {"abs_stepsize": float(step_size)}


# name -> (foolbox.attacks, steps, step_size) -> attack
BUILDERS = {
    "fgsm": lambda fa, steps, size: fa.LinfFastGradientAttack(random_start=False),
    "fgm": lambda fa, steps, size: fa.L2FastGradientAttack(random_start=False),
    "pgd": lambda fa, steps, size: fa.LinfProjectedGradientDescentAttack(
        steps=steps, random_start=True, **_pgd_size(steps, size)),
    "pgd-l2": lambda fa, steps, size: fa.L2ProjectedGradientDescentAttack(
        steps=steps, random_start=True, **_pgd_size(steps, size)),
    "deepfool": lambda fa, steps, size: fa.LinfDeepFoolAttack(steps=steps),
    "deepfool-l2": lambda fa, steps, size: fa.L2DeepFoolAttack(steps=steps),
    "fmn": lambda fa, steps, size: fa.LInfFMNAttack(steps=steps),
}


def build(name: str, steps: int, step_size: Optional[float]):
    """The foolbox attack ``name`` (a key of :data:`BUILDERS`) with ``steps`` and ``step_size``
    (None: PGD's ``2.5·ε/steps``)."""
    return BUILDERS[name](_foolbox().attacks, steps, step_size)


def wrap(model: nn.Module, device: torch.device):
    """``model`` (inputs in [0, 1]) as a foolbox model on ``device``."""
    return _foolbox().PyTorchModel(model, bounds=(0, 1), device=device)


def fixed(fmodel, attack, x, y, eps: float, seed: int, batch: int, device) -> torch.Tensor:
    """Per-sample correctness under a fixed-budget attack at ``eps`` (no attack at 0: a plain
    prediction through foolbox's model)."""
    if eps == 0:
        return fmodel(x).argmax(-1) == y
    with seeded(seed, batch, device):
        _, _, success = attack(fmodel, x, y, epsilons=eps)
    return ~success


def minimizing(fmodel, attack, norm: str, x, y, epsilons: list[float], clean_correct):
    """One minimum-norm run: correctness at each epsilon (the perturbation clipped to it) and
    each sample's norm (0 when misclassified already, inf when no adversarial was found)."""
    raw, _, success = attack(fmodel, x, y, epsilons=[*epsilons, None])
    found = success[-1]
    dist = distance(norm, x, raw[-1])
    norms = torch.where(clean_correct, torch.where(found, dist, torch.full_like(dist, math.inf)),
                        torch.zeros_like(dist))
    return ~success[:-1], norms


def adversarials(fmodel, attack, x, y, epsilon: Optional[float], seed: int, device) -> torch.Tensor:
    """One batch's adversarials at ``epsilon`` (clipped to it; None: a minimum-norm attack's
    unclipped ones), random starts drawn as :func:`fixed` draws a first batch's."""
    with seeded(seed, 0, device):
        raw, clipped, _ = attack(fmodel, x, y, epsilons=epsilon)
    return raw if epsilon is None else clipped
