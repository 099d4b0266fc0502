"""``hydra-adam``: this project's earlier HYDRA variant, kept beside the reference recipe (``hydra``)
because it is the stronger baseline at 99 % sparsity on digits.

Each prunable weight gets an importance score, initialised to ``|w|`` (so before any training the
mask is exactly magnitude-layerwise's). With every weight frozen, the scores are trained by Adam
(``hydra_adam.lr`` 0.01) on the cross-entropy of the fine-tune's attack (``finetune.attack``, FGSM
with random start by default, at the run's ε) through a per-layer top-k of ``s`` (not ``|s|``); the
top-k hands its gradient straight through, ``dL/ds = w · dL/d(w·m)``. The final mask is the per-layer
top-k of the last scores, and the shared Stage 3 fine-tunes it like every other method's. Its epochs
follow the budget (``hydra_adam.epochs``; None: the solve's).

How it departs from the reference (inspire-group/hydra), which ``hydra`` follows: Adam at lr 0.01
instead of SGD (lr 0.1, momentum 0.9, weight decay 1e-4, cosine); scores ``|w|`` instead of
``√(6/fan_in)·w/max|w|``; ranking ``s`` instead of ``|s|`` (a score pushed below zero marks a connection
the loss wants gone); the fine-tune attack's cross-entropy instead of TRADES; BatchNorm frozen.

Where it matters (digits / MLP, ε 0.1, budget ``matched``, PGD-10): at 99 % it keeps robust accuracy
0.325 ± 0.033 against ``hydra``'s 0.265 ± 0.024 over six seeds, ahead on every seed; at 95 % ``hydra`` is
ahead (0.713 ± 0.026 against 0.675 ± 0.029, three seeds). It moves much further from the magnitude mask:
it replaces 85-94 % of magnitude-layerwise's kept weights, where ``hydra`` replaces 28-45 %.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..events import Stage
from ..robustness.accuracy import accuracy
from ..robustness.training import perturb
from ..train import run_epochs
from .budget import own_stage_epochs
from .hydra import ScoredModel, replaced
from .registry import PruneContext, PruneResult, register

STAGE = Stage("hydra-adam", "Stage 1 · HYDRA-Adam score training", "hydra-adam scores")


def magnitude_scores(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().abs()


@register("hydra-adam", "scores |w| trained by Adam on the fine-tune attack's loss, per-layer top-k of s "
          "(the earlier HYDRA variant)", color="#c5b0d5", section="hydra_adam", stage=STAGE)
def prune(ctx: PruneContext) -> PruneResult:
    cfg, run = ctx.config.hydra_adam, ctx.config
    model = ctx.student()
    for p in model.parameters():
        p.requires_grad_(False)
    scored = ScoredModel(model, run.sparsity, init=magnitude_scores, signed=True).to(ctx.device)
    start = scored.mask()
    gen = torch.Generator().manual_seed(run.seed + 2)

    def step(x, y):
        xa = perturb(scored, x, y, run.finetune.attack, run.epsilon, steps=run.finetune.pgd_steps, generator=gen)
        return F.cross_entropy(scored(xa), y), {}

    def end_epoch(epoch):
        mask = scored.mask()
        pruned = copy.deepcopy(model)
        mask.apply(pruned)
        return {"accuracy": accuracy(pruned, ctx.test), "replaced": replaced(start, mask)}

    history = run_epochs(scored, ctx.train, step, stage=STAGE.name, epochs=own_stage_epochs(run), lr=cfg.lr,
                         batch_size=run.batch_size, seed=run.seed + 2, on_event=ctx.on_event,
                         end_epoch=end_epoch, params=scored.scores.parameters(), amp=run.amp)
    mask = scored.mask()
    for p in model.parameters():
        p.requires_grad_(True)
    mask.apply(model)
    return PruneResult(model, mask, history, info={"layer_keep": dict(scored.keep), "replaced": replaced(start, mask)})
