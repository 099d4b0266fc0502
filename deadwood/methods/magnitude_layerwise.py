"""``magnitude-layerwise``: the same fraction of smallest |w| cut from every layer."""
from ..pruning.masks import layerwise_cut, magnitudes
from .registry import PruneContext, PruneResult, register


@register("magnitude-layerwise", "the same fraction of smallest |w| cut from every layer", color="#17becf")
def prune(ctx: PruneContext) -> PruneResult:
    model = ctx.student()
    mask = layerwise_cut(magnitudes(model), ctx.config.sparsity)
    mask.apply(model)
    return PruneResult(model, mask)
