"""Stage 2 as configured by ``RunConfig.cut``: which layers lose how much, at which granularity.

The magnitude and Deadwooding methods both end in one cut of their scores; this
module turns ``config.cut`` into that cut. With the defaults (global allocation,
unstructured granularity) it is exactly :func:`deadwood.masks.global_cut`.
"""
from __future__ import annotations

from typing import Mapping

import torch

from .masks import Mask, _apportion, global_cut


def per_layer_cut(scores: Mapping[str, torch.Tensor], counts: Mapping[str, int]) -> Mask:
    """Cut the ``counts[layer]`` lowest scores of every layer."""
    out = {}
    for n, s in scores.items():
        keep = torch.ones(s.numel(), dtype=torch.bool, device=s.device)
        k = int(counts[n])
        if k:
            keep[torch.topk(s.reshape(-1).float(), k, largest=False).indices] = False
        out[n] = keep.view_as(s)
    return Mask(out)


def layer_counts(scores: Mapping[str, torch.Tensor], config) -> tuple[dict[str, int] | None, dict]:
    """Weights to cut per layer under ``config.cut.allocation`` (None: one global cut)."""
    cc, sparsity = config.cut, config.sparsity
    if cc.allocation == "global":
        return None, {}
    if cc.allocation == "uniform":  # the same split as masks.layerwise_cut
        sizes = [s.numel() for s in scores.values()]
        counts = _apportion(round(sparsity * sum(sizes)), sizes, sparsity)
        return dict(zip(scores, counts)), {"allocation": "uniform"}
    from .analysis.region_bound import bound_allocation

    shapes = {n: tuple(s.reshape(s.shape[0], -1).shape) for n, s in scores.items()}
    return bound_allocation(shapes, sparsity, min_keep=config.min_keep, samples=cc.bound_samples,
                            seed=config.seed)


def cut(scores: Mapping[str, torch.Tensor], config) -> tuple[Mask, dict]:
    """The mask ``config.cut`` asks for at ``config.sparsity``, and a JSON-able report."""
    cc = config.cut
    counts, report = layer_counts(scores, config)
    if cc.granularity == "bcr":
        from .bcr import bcr_cut

        mask, rep = bcr_cut(scores, config.sparsity, (cc.block_rows, cc.block_cols), config.min_keep, counts)
        return mask, {**report, **rep}
    if counts is None:
        return global_cut(scores, config.sparsity, config.min_keep)
    return per_layer_cut(scores, counts), report
