"""Stage 2 as configured by ``RunConfig.cut``: which layers lose how much, at which granularity.

The magnitude and Deadwooding methods both end in one cut of their scores; this
module turns ``config.cut`` into that cut. With the defaults (global allocation,
unstructured granularity) it is exactly :func:`deadwood.pruning.masks.global_cut`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import torch

from .allocation import layer_counts
from .masks import GlobalCuts, Mask, global_cut, per_layer_cut


def _one_threshold(config) -> bool:
    """Whether ``config.cut`` is one global threshold over every weight (:func:`global_cut`): global
    allocation at unstructured granularity, the default."""
    return config.cut.allocation == "global" and config.cut.granularity != "bcr"


def cut(scores: Mapping[str, torch.Tensor], config) -> tuple[Mask, dict]:
    """The mask ``config.cut`` asks for at ``config.sparsity``, and a JSON-able report."""
    if _one_threshold(config):
        return global_cut(scores, config.sparsity, config.min_keep)
    cc = config.cut
    counts, report = layer_counts(scores, config)
    if cc.granularity == "bcr":
        from .bcr import bcr_cut

        mask, rep = bcr_cut(scores, config.sparsity, (cc.block_rows, cc.block_cols), config.min_keep, counts)
        return mask, {**report, **rep}
    return per_layer_cut(scores, counts), report


def cuts(scores: Mapping[str, torch.Tensor], config) -> Callable[[float], tuple[Mask, dict]]:
    """``κ -> cut(scores, config at κ)``, for cutting the same scores at many κ (the sparsity profile):
    with the default global unstructured cut, one sort serves every κ (:class:`GlobalCuts`)."""
    if _one_threshold(config):
        cutter = GlobalCuts(scores)
        return lambda k: cutter(k, config.min_keep)
    return lambda k: cut(scores, dataclasses.replace(config, sparsity=k))
