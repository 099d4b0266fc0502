"""Differentiable training-time attacks in plain PyTorch (FGSM with random start, L-inf PGD).

Training needs an adversarial example every mini-batch, so these stay in plain, differentiable
torch for speed. Every training stage (``deadwood.train``, ``deadwood.methods``) imports
:func:`perturb` from this module; the reported robustness numbers come from foolbox and
AutoAttack instead (:mod:`deadwood.robustness.evaluation`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ATTACKS = ("none", "fgsm", "pgd")


def _uniform(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator, device="cpu" if generator is not None else x.device)
    return (u.to(x.device, x.dtype) * 2 - 1) * eps


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, random_start: bool = True,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """FGSM with random start (Wong et al. 2020): ``x0 = x + U(-ε, ε)``, one signed step of
    ``1.25ε``, projected back to the ε-ball and to [0, 1]."""
    if eps == 0:
        return x.detach()
    x0 = (x + _uniform(x, eps, generator)).clamp(0, 1) if random_start else x
    alpha = 1.25 * eps if random_start else eps
    adv = x0 + alpha * _input_grad(model, x0, y).sign()
    return torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 10,
        step_size: float | None = None, *, random_start: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """L-inf PGD (Madry et al.): random start in the ε-ball, ``steps`` signed steps of
    ``step_size`` (default ``2.5ε/steps``), each projected to the ε-ball and [0, 1]."""
    if eps == 0:
        return x.detach()
    step_size = 2.5 * eps / steps if step_size is None else step_size
    adv = (x + _uniform(x, eps, generator)).clamp(0, 1) if random_start else x.clone()
    for _ in range(steps):
        adv = adv + step_size * _input_grad(model, adv, y).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: str, eps: float, *,
            steps: int = 7, generator: torch.Generator | None = None) -> torch.Tensor:
    """Adversarial inputs for training: ``attack`` in ('none', 'fgsm', 'pgd').

    The model is put in eval mode while the attack runs (BatchNorm statistics must
    not learn from the attack's probes) and restored afterwards.
    """
    if attack == "none" or eps == 0:
        return x
    was_training = model.training
    model.eval()
    try:
        if attack == "fgsm":
            return fgsm(model, x, y, eps, generator=generator)
        if attack == "pgd":
            return pgd(model, x, y, eps, steps, generator=generator)
        raise ValueError(f"unknown attack '{attack}'; choose one of: {', '.join(ATTACKS)}")
    finally:
        model.train(was_training)
