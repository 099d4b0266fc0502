"""``hydra``: HYDRA-style pruning (Sehwag et al., NeurIPS 2020).

Each prunable weight gets an importance score, initialised from ``|w|`` (so before any
training the mask is exactly magnitude-layerwise's). With the weights frozen, the scores
are trained with Adam (``hydra.lr``) on the adversarial loss (the fine-tuning attack,
FGSM with random start by default, at the run's epsilon) through a per-layer top-k mask
``m``; the top-k has no gradient, so the straight-through estimator hands the mask's
gradient ``w · dL/d(w·m)`` to the score unchanged. The final mask is the per-layer top-k
of the trained scores (per-layer counts add up to the exact global sparsity), and the
shared Stage 3 fine-tunes it like every other method's.

Two differences from the reference code (inspire-group/hydra): it ranks ``|s|`` and we rank
``s`` (scores start at ``|w| >= 0``; a score the loss has pushed below zero marks a
connection it wants gone, which ``|s|`` would bring back), and it trains scores with SGD
and a scaled initialisation where we use Adam on ``|w|`` itself.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..pruning.allocation import uniform_counts
from ..pruning.masks import Mask, prunable
from ..robustness.training import perturb
from ..train import run_epochs
from ..robustness.accuracy import accuracy
from ..events import Stage
from .budget import own_stage_epochs
from .registry import PruneContext, PruneResult, register

STAGE = Stage("hydra", "Stage 1 · HYDRA score training", "hydra scores")  # what this method's own Stage 1 is called


class _TopK(torch.autograd.Function):
    """Binary top-k mask in the forward pass, identity in the backward pass."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, k: int):
        keep = torch.zeros(scores.numel(), device=scores.device, dtype=scores.dtype)
        keep[torch.topk(scores.reshape(-1), k).indices] = 1
        return keep.view_as(scores)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class ScoredModel(nn.Module):
    """``model`` evaluated with every prunable weight replaced by ``w · topk(score)``."""

    def __init__(self, model: nn.Module, sparsity: float):
        super().__init__()
        self.model = model
        weights = prunable(model)
        cut = uniform_counts({n: w.numel() for n, w in weights.items()}, sparsity)
        self.keep = {n: w.numel() - cut[n] for n, w in weights.items()}
        self.names = list(weights)
        self.scores = nn.ParameterList([nn.Parameter(w.detach().abs().clone()) for w in weights.values()])

    def masked_weights(self) -> dict[str, torch.Tensor]:
        weights = prunable(self.model)
        return {n: weights[n] * _TopK.apply(s, self.keep[n]) for n, s in zip(self.names, self.scores)}

    def forward(self, x):
        return functional_call(self.model, self.masked_weights(), (x,))

    def mask(self) -> Mask:
        with torch.no_grad():
            return Mask({n: _TopK.apply(s, self.keep[n]) > 0 for n, s in zip(self.names, self.scores)})


@register("hydra", "importance scores from |w| trained on the adversarial loss, per-layer top-k (HYDRA)",
          color="#9467bd", section="hydra", stage=STAGE)
def prune(ctx: PruneContext) -> PruneResult:
    cfg, run = ctx.config.hydra, ctx.config
    model = ctx.student()
    for p in model.parameters():
        p.requires_grad_(False)
    scored = ScoredModel(model, run.sparsity).to(ctx.device)
    gen = torch.Generator().manual_seed(run.seed + 2)

    def step(x, y):
        xa = perturb(scored, x, y, run.finetune.attack, run.epsilon, steps=run.finetune.pgd_steps, generator=gen)
        return F.cross_entropy(scored(xa), y), {}

    def end_epoch(epoch):
        mask = scored.mask()
        pruned = ctx.student()
        mask.apply(pruned)
        return {"accuracy": accuracy(pruned, ctx.test)}

    history = run_epochs(scored, ctx.train, step, stage=STAGE.name, epochs=own_stage_epochs(run), lr=cfg.lr,
                         batch_size=run.batch_size, seed=run.seed + 2, on_event=ctx.on_event,
                         end_epoch=end_epoch, params=scored.scores.parameters(), amp=run.amp)
    mask = scored.mask()
    for p in model.parameters():
        p.requires_grad_(True)
    mask.apply(model)
    return PruneResult(model, mask, history, info={"layer_keep": dict(scored.keep)})
