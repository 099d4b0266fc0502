"""How many weights each layer loses: the per-layer side of Stage 2.

A cut removes ``round(κN)`` of the ``N`` prunable weights. With the 'global' allocation one
threshold decides and the per-layer counts are an outcome; 'uniform' and 'bound' fix the
counts first, and :func:`deadwood.pruning.masks.per_layer_cut` then cuts each layer's lowest scores.
``magnitude-layerwise`` and ``magnitude`` with ``--cut-allocation uniform`` are one code path:
:func:`uniform_counts` followed by the per-layer cut.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch


def apportion(total: int, sizes: Sequence[int], sparsity: float) -> list[int]:
    """Per-layer cut counts that follow ``sparsity`` and add up to ``total`` (largest remainder):
    each layer gets ``floor(κ·n_l)``, and the layers with the largest remainders one more."""
    exact = [sparsity * s for s in sizes]
    counts = [int(e) for e in exact]
    order = sorted(range(len(sizes)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def uniform_counts(sizes: Mapping[str, int], sparsity: float) -> dict[str, int]:
    """The same fraction κ from every layer, the global count ``round(κN)`` exact."""
    counts = apportion(round(sparsity * sum(sizes.values())), list(sizes.values()), sparsity)
    return dict(zip(sizes, counts))


def layer_counts(scores: Mapping[str, torch.Tensor], config) -> tuple[dict[str, int] | None, dict]:
    """Weights to cut per layer under ``config.cut.allocation`` (None: one global cut), and a
    JSON-able report of the choice."""
    cc, sparsity = config.cut, config.sparsity
    if cc.allocation == "global":
        return None, {}
    if cc.allocation == "uniform":
        return uniform_counts({n: s.numel() for n, s in scores.items()}, sparsity), {"allocation": "uniform"}
    from .region_bound import bound_allocation

    shapes = {n: tuple(s.reshape(s.shape[0], -1).shape) for n, s in scores.items()}
    return bound_allocation(shapes, sparsity, min_keep=config.min_keep, samples=cc.bound_samples,
                            seed=config.seed)
