"""The solve, replayed: every epoch's frame of a stored Deadwooding solve, prepared once per solve.

A stored solve of a model up to :data:`deadwood.methods.deadwooding.method.SNAPSHOT_LIMIT` prunable
weights keeps each epoch's weights in float16 (:meth:`deadwood.storage.solves.SolveStore.snapshots`).
From them each epoch's frame holds the per-layer histogram of ``|w|`` (log-spaced bins shared by all
epochs, κ-free, computed once per solve) and the cut at κ as that epoch's weights would take it: the
threshold θ(κ), per-layer sparsity and each layer's mask picture (computed once per solve and κ). The
frames are kept in memory (``st.cache_resource``: shared, never copied, read only), so a frame of the
replay is only drawing. The cut is of float16 magnitudes: ties that float32 would split may fall
together, a difference of a few weights at most.

Without snapshots (an entry stored before solves kept them, or a larger model) the replay has the
multipliers and the per-epoch magnitude quantiles that every solve records, and :attr:`Replay.missing`
says why the masks are not there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

import deadwood
from deadwood.pruning.cut import cut
from deadwood.pruning.dead_wood import with_dead_fractions
from deadwood.pipeline import Cache
from deadwood.storage.solves import snapshot_note

from . import stored_solve
from .charts import dual_entries
from .charts_walkthrough import mask_picture

BINS = 60  # log-spaced bins of |w|, shared by every layer and epoch


@dataclass(frozen=True)
class Replay:
    """One stored solve, ready to replay at one κ: ``history`` (the epochs with multipliers, each with
    its dead fraction at κ) and ``frames`` (one per epoch, or None: ``missing`` says why: ``"old"``,
    stored before solves kept snapshots; ``"large"``, above the size limit; ``"damaged"``, its
    snapshot file does not read or was dropped for that: :func:`why_missing`)."""

    history: list
    frames: list | None
    missing: str | None
    note: dict

    @property
    def epochs(self) -> int:
        return len(self.history)


def at(config: deadwood.RunConfig) -> Replay | None:
    """The replay of ``config``'s stored solve at ``config.sparsity``, or None when none is stored or it
    has no epoch with multipliers."""
    solved = stored_solve.summary(config)
    stamp = stored_solve.stamp(config)
    if solved is None or stamp is None:
        return None
    return _replay(stored_solve.cut_key(config), stamp, config.sparsity, config)


@st.cache_resource(max_entries=8, show_spinner="Preparing the replay...")
def _replay(key: str, stamp: int, sparsity: float, _config) -> Replay | None:
    solved = stored_solve.summary(_config)
    if solved is None:
        return None
    note = solved.get("snapshots")
    snaps = _magnitudes(key, stamp, _config) if note else None
    sizes = {n: int(w.numel()) for n, w in snaps[0].items()} if snaps else None
    history = dual_entries(solved["history"])
    if sizes is None:
        sizes = (stored_solve.at(_config) or {}).get("layer_sizes")
    if sizes:
        history = with_dead_fractions(history, sizes, sparsity)
    if not history:
        return None
    if not snaps:
        return Replay(history, None, why_missing(solved), note or {})
    hist = _histograms(key, stamp, _config)
    frames = []
    for e, scores in enumerate(snaps):
        mask, report = cut(scores, _config)
        frames.append({"epoch": e + 1, "threshold": report.get("threshold"),
                       "layer_sparsity": mask.layer_sparsity(), "global_sparsity": mask.sparsity(),
                       "pictures": {n: mask_picture(m.numpy()) for n, m in mask.items()},
                       "histogram": {"edges": hist["edges"], "counts": hist["counts"][e]}})
    return Replay(history[:len(frames)], frames, None, note)


def why_missing(solved: dict) -> str:
    """Why a stored solve (its summary) has no snapshots to replay: ``"old"``, stored before solves kept
    them; ``"large"``, above the size limit; ``"damaged"``, its file does not read, or ``deadwood cache
    prune`` dropped it for that (``snapshots_dropped``)."""
    if not solved.get("snapshots"):
        return "damaged" if solved.get("snapshots_dropped") else "old"
    parsed = snapshot_note(solved)  # (layers, epochs), or None for a note that is not valid
    return "large" if parsed and parsed[1] == 0 else "damaged"


@st.cache_resource(max_entries=2, show_spinner=False)
def _magnitudes(key: str, stamp: int, _config) -> list[dict[str, torch.Tensor]] | None:
    """|w| of every epoch's snapshot, in float32 (what the cut and the histograms read)."""
    snaps = Cache().solves.snapshots(_config)
    return None if snaps is None else [{n: w.float().abs() for n, w in s.items()} for s in snaps]


@st.cache_resource(max_entries=2, show_spinner=False)
def _histograms(key: str, stamp: int, _config) -> dict:
    """``{"edges": [...], "counts": [per epoch {layer: [...]}]}`` over bins shared by all epochs."""
    snaps = _magnitudes(key, stamp, _config)
    flat = torch.cat([w.reshape(-1) for s in snaps for w in s.values()])
    positive = flat[flat > 0]
    lo = float(positive.min()) if positive.numel() else 1e-8
    edges = np.logspace(np.log10(lo), np.log10(float(flat.max()) * 1.0001 + 1e-12), BINS + 1)
    counts = [{n: np.histogram(w.reshape(-1).numpy(), bins=edges)[0].tolist() for n, w in s.items()}
              for s in snaps]
    return {"edges": edges.tolist(), "counts": counts}
