"""``undecayed``: Good et al.'s undecayed pruning (NeurIPS 2022), one global cut of its score.

Good et al. ("Recall Distortion in Neural Network Pruning and the Undecayed Pruning
Algorithm") score each weight by

    s_i = | −θ_i · ∂L/∂θ_i (θ) + ε · θ_i² |

where ``L`` is the training loss *without* the weight-decay term and ``ε`` the weight
decay the model was trained with: a trained model sits at a stationary point of
``L + (ε/2)||θ||²``, not of ``L``, and the ``ε θ²`` term accounts for the decay when
estimating what removing a weight costs the undecayed loss. Here ``θ`` is the teacher,
``ε`` is ``config.teacher.weight_decay``, and ``∇L`` is the full-batch gradient of the
teacher's own training objective (cross-entropy on the inputs it was trained on:
clean, or FGSM/PGD-perturbed with the teacher's attack and epsilon, crafted once with a
fixed seed), averaged over the training split. The ``κN`` lowest scores are cut in one
global threshold (collapse guard as for ``magnitude``).

With ``ε = 0`` (the default teacher) the decay term vanishes and the score is the
first-order Taylor score ``|θ · ∇L|`` (Molchanov et al. 2017): the method still runs
and says so in its info, but it then no longer corrects for decay, and on a
well-converged teacher its ranking is driven by what is left of the gradient. Train
the teacher with ``--teacher-weight-decay`` to get the algorithm as published.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.datasets import batches
from ..pruning.masks import global_cut, prunable
from ..robustness.training import perturb
from .registry import PruneContext, PruneResult, register


def undecayed_scores(model, ctx: PruneContext, weight_decay: float) -> dict[str, torch.Tensor]:
    """``|−θ ⊙ ∇L(θ) + ε θ²|`` per prunable tensor, ``∇L`` averaged over the training split."""
    run = ctx.config
    params = prunable(model)
    grads = {n: torch.zeros_like(p) for n, p in params.items()}
    gen = torch.Generator().manual_seed(run.seed + 8)
    model.eval()  # BatchNorm must not learn from the scoring pass
    for x, y in batches(ctx.train, 512):
        attack = "none" if run.teacher_epsilon == 0 else run.teacher.attack
        xa = perturb(model, x, y, attack, run.teacher_epsilon, steps=run.teacher.pgd_steps, generator=gen)
        loss = F.cross_entropy(model(xa), y, reduction="sum")
        for n, g in zip(params, torch.autograd.grad(loss, list(params.values()))):
            grads[n] += g
    model.train()
    n = len(ctx.train)
    return {k: (-p.detach() * grads[k] / n + weight_decay * p.detach() ** 2).abs() for k, p in params.items()}


@register("undecayed", "Good et al.'s undecayed score |−θ·∇L + ε·θ²| (ε: the teacher's weight decay), "
                       "one global cut", color="#ff7f0e")
def prune(ctx: PruneContext) -> PruneResult:
    model = ctx.student()
    eps = float(ctx.config.teacher.weight_decay)
    mask, report = global_cut(undecayed_scores(model, ctx, eps), ctx.config.sparsity, ctx.config.min_keep)
    mask.apply(model)
    report.update({"weight_decay": eps,
                   "score": "|−θ·∇L + ε·θ²|" if eps > 0 else "|θ·∇L| (ε = 0: first-order Taylor, no decay term)"})
    return PruneResult(model, mask, info=report)
