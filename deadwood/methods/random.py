"""``random``: a uniformly random global mask at the same sparsity (a floor for every method)."""
import torch

from ..pruning.masks import magnitudes, random_cut
from .registry import PruneContext, PruneResult, register


@register("random", "a uniformly random global mask", color="#7f7f7f")
def prune(ctx: PruneContext) -> PruneResult:
    model = ctx.student()
    gen = torch.Generator().manual_seed(ctx.config.seed)
    mask, report = random_cut(magnitudes(model), ctx.config.sparsity, gen, ctx.config.min_keep)
    mask = mask.to(ctx.device)
    mask.apply(model)
    return PruneResult(model, mask, info=report)
