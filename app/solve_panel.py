"""What a stored Deadwooding solve shows at any κ before fine-tuning: the multipliers (κ-free), and the
per-layer sparsity, dead wood and masks of its cut at κ (:mod:`app.stored_solve`)."""
from __future__ import annotations

import streamlit as st

import deadwood

from . import charts, show, stored_solve
from .captions import multipliers_caption, step_link
from .charts_walkthrough import masks_figure


def at_kappa(config: deadwood.RunConfig) -> bool:
    """Everything the stored solve of ``config`` gives at ``config.sparsity`` without fine-tuning: the
    multipliers (κ-free), per-layer sparsity, the dead wood and the masks at κ. False when no solve
    is stored."""
    cut = stored_solve.at(config)
    if cut is None:
        return False
    k = config.sparsity
    history = cut["history"]
    if charts.dual_entries(history):
        show.figure(charts.multipliers_figure(history), "solve-multipliers")
        multipliers_caption()
    left, right = st.columns(2)
    with left:
        show.figure(charts.layer_sparsity_figure(cut), "cut-layer-sparsity")
        st.caption(f"Before fine-tuning: the stored solve cut at κ = {k:g}, one threshold for every layer "
                   f"({step_link(4, 'walkthrough, step 4')}).")
    with right:
        show.figure(charts.dead_wood_figure(history, k), "cut-dead-wood")
        st.caption(f"Per layer, the share of weights below the threshold κ = {k:g} would use, epoch by epoch of "
                   "the solve.")
    show.figure(masks_figure(cut["pictures"], cut["layer_sparsity"], k), "cut-masks")
    st.caption("Before fine-tuning. Dark: kept weights; light: cut. Small layers weight by weight; large ones "
               "as the kept share of each tile.")
    return True
