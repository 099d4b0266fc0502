"""``magnitude``: one global lowest-|w| cut of the teacher (Deadwooding without Stage 1)."""
from ..masks import global_cut, magnitudes
from . import PruneContext, PruneResult, register


@register("magnitude", "one global cut of the smallest |w| across all layers")
def prune(ctx: PruneContext) -> PruneResult:
    model = ctx.student()
    mask, report = global_cut(magnitudes(model), ctx.config.sparsity, ctx.config.min_keep)
    mask.apply(model)
    return PruneResult(model, mask, info=report)
