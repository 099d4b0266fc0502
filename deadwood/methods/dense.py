"""``dense``: no pruning, for reference (fine-tuned with the same budget as the others)."""
from ..pruning.masks import Mask
from .registry import PruneContext, PruneResult, register


@register("dense", "no pruning: the teacher itself, for reference", color="#8c564b", prunes=False)
def prune(ctx: PruneContext) -> PruneResult:
    model = ctx.student()
    return PruneResult(model, Mask.ones_like(model))
