"""``magnitude``: one global lowest-|w| cut of the teacher (Deadwooding without Stage 1).

``config.cut`` can change the cut: per-layer allocation (uniform, or guided by the
linear-region bound) and block-row-column granularity (see deadwood.pruning.cut).
"""
from ..pruning.cut import cut
from ..pruning.masks import magnitudes
from .registry import PruneContext, PruneResult, register


@register("magnitude", "one global cut of the smallest |w| across all layers", color="#1f77b4",
          cut_options=True)
def prune(ctx: PruneContext) -> PruneResult:
    model = ctx.student()
    mask, report = cut(magnitudes(model), ctx.config)
    mask.apply(model)
    return PruneResult(model, mask, info=report)
