"""A configuration's stored Stage 1 solve, read for the pages: its history, and its cut at any κ.

The solve does not depend on κ (:mod:`deadwood.storage.solves`), so once it is
stored every κ's per-layer sparsity, dead wood and masks follow from it without any training: the
cut of the stored student at κ, before fine-tuning. The student's magnitudes are read once per
stored solve (keyed by the solve, its cut settings and the file's mtime) and each κ's cut is cached,
so moving the κ slider redraws at once. Nothing here computes for more than a cut.
"""
from __future__ import annotations


import numpy as np
import streamlit as st
import torch

import deadwood
from deadwood.pipeline import Cache
from deadwood.storage.solves import SolveStore, solve_key
from deadwood.pruning.cut import cut
from deadwood.pruning.dead_wood import with_dead_fractions
from deadwood.pruning.masks import prunable

from .charts_walkthrough import mask_picture

HISTOGRAM_BINS = 80  # log-spaced bins of |w| for the weight-magnitude chart


def _store() -> SolveStore:
    return Cache().solves


def stamp(config: deadwood.RunConfig) -> int | None:
    """When ``config``'s stored solve was written (a key for what is kept in memory), or None."""
    if config is None or not config.stores_solve():
        return None
    return _store().stamp(config)


def cut_key(config: deadwood.RunConfig) -> str:
    """What the cut of a stored solve depends on: the solve, the cut settings and the collapse guard."""
    return f"{solve_key(config)}|{config.cut}|{config.min_keep}|{config.prune_layers}"


def summary(config: deadwood.RunConfig) -> dict | None:
    """The stored solve's summary (``history``, ``info``, ``profile``), or None when none is stored."""
    when = stamp(config)
    return None if when is None else _summary(solve_key(config), when, config)


@st.cache_data(max_entries=8, show_spinner=False)
def _summary(key: str, stamp: int, _config) -> dict | None:
    return _store().summary(_config)


@st.cache_resource(max_entries=2, show_spinner="Reading the stored solve...")
def _scores(key: str, stamp: int, _config) -> dict[str, torch.Tensor] | None:
    """|w| of the solved (uncut) student's prunable weights, in the model's order."""
    loaded = _store().load(_config)
    if loaded is None:
        return None
    state = loaded[0]
    names = list(prunable(deadwood.model_for(_config)))
    return {n: state[n].detach().abs().float() for n in names}


def at(config: deadwood.RunConfig) -> dict | None:
    """The stored solve cut at ``config.sparsity`` with ``config.cut``, before fine-tuning::

        {"sparsity", "layer_sparsity", "layer_sizes", "global_sparsity", "threshold",
         "pictures": {layer: (grid, tile)}, "history": per-epoch entries with the dead fraction at κ}

    or None when no solve is stored for ``config``."""
    when = stamp(config)
    if when is None:
        return None
    return _at(cut_key(config), when, config.sparsity, config)


@st.cache_data(max_entries=32, show_spinner=False)
def _at(key: str, stamp: int, sparsity: float, _config) -> dict | None:
    scores = _scores(key, stamp, _config)
    solved = _summary(solve_key(_config), stamp, _config)
    if scores is None or solved is None:
        return None
    mask, report = cut(scores, _config)
    sizes = mask.sizes()
    return {"sparsity": sparsity, "layer_sparsity": mask.layer_sparsity(), "layer_sizes": sizes,
            "global_sparsity": mask.sparsity(), "threshold": report.get("threshold"),
            "pictures": {n: mask_picture(m.numpy()) for n, m in mask.items()},
            "history": with_dead_fractions(solved["history"], sizes, sparsity)}


def histograms(config: deadwood.RunConfig) -> dict | None:
    """Per layer, counts of the stored student's |w| over :data:`HISTOGRAM_BINS` log-spaced bins shared
    by every layer: ``{"edges": [...], "counts": {layer: [...]}}`` (κ-free), or None."""
    when = stamp(config)
    return None if when is None else _histograms(cut_key(config), when, config)


@st.cache_data(max_entries=4, show_spinner=False)
def _histograms(key: str, stamp: int, _config) -> dict | None:
    scores = _scores(key, stamp, _config)
    if scores is None:
        return None
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    positive = flat[flat > 0]
    lo = float(positive.min()) if positive.numel() else 1e-8
    edges = np.logspace(np.log10(lo), np.log10(float(flat.max()) * 1.0001 + 1e-12), HISTOGRAM_BINS + 1)
    counts = {n: np.histogram(s.reshape(-1).numpy(), bins=edges)[0].tolist() for n, s in scores.items()}
    return {"edges": edges.tolist(), "counts": counts}


