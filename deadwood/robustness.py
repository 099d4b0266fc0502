"""Robustness: the one module that attacks go through.

Training-time attacks are plain, differentiable PyTorch (:mod:`deadwood.attacks`);
evaluation curves are computed here.
"""
from __future__ import annotations

import torch
from torch import nn

from .attacks import ATTACKS, fgsm, perturb, pgd  # noqa: F401  (re-exported)
from .data import ArrayDataset, batches


def pgd_curve(model: nn.Module, ds: ArrayDataset, epsilons, *, steps: int = 10, seed: int = 0,
              batch_size: int = 512) -> dict:
    """Robust accuracy under L-inf PGD-``steps`` (random start) at each epsilon.

    At epsilon 0 no attack runs, so the first point is exactly the clean accuracy.
    """
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    acc = []
    for eps in epsilons:
        correct = 0
        for x, y in batches(ds, batch_size):
            xa = pgd(model, x, y, eps, steps, generator=gen) if eps > 0 else x
            with torch.no_grad():
                correct += int((model(xa).argmax(1) == y).sum())
        acc.append(correct / len(ds))
    model.train(was)
    return {"attack": "pgd", "steps": steps, "epsilons": [float(e) for e in epsilons], "accuracy": acc,
            "samples": len(ds), "seed": seed}
