"""The sparsity profile chart: accuracy right after one global cut, κ by κ (no Streamlit here).

A pure function of a record's ``sparsity_profile`` (see :mod:`deadwood.pruning.sparsity_profile`): clean and
robust accuracy of the solved student and of the teacher's own weights, cut at each κ of the
profile's grid, before any fine-tuning. The chosen κ is marked; :func:`deadwood.pruning.sparsity_profile.at` gives
the numbers at it.
"""
from __future__ import annotations

import math
from typing import Optional

import plotly.graph_objects as go

from .chart_look import layout
from .charts import TEACHER_COLOR, method_color


def profile_figure(profile: dict, sparsity: Optional[float] = None, method: str = "deadwooding") -> go.Figure:
    """Clean (solid) and robust (dashed) accuracy after one cut at every κ of ``profile``, for the
    solved student (``method``'s colour) and the teacher's weights (what magnitude pruning cuts);
    a vertical line at ``sparsity``. The κ axis is stretched near 1, where the cliff is."""
    ks = profile["sparsities"]
    x = [-_log_keep(k) for k in ks]
    ticks = [k for k in (0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995) if ks[0] <= k <= ks[-1]]
    fig = go.Figure()
    for who, name, color in (("student", f"{method} (solved)", method_color(method)),
                             ("teacher", "teacher's weights (magnitude)", TEACHER_COLOR)):
        for metric, dash in (("clean", "solid"), ("robust", "dash")):
            fig.add_trace(go.Scatter(
                x=x, y=profile[who][metric], mode="lines+markers", name=f"{name}, {metric}",
                line=dict(color=color, dash=dash, width=2.5), marker=dict(size=5),
                customdata=ks, hovertemplate="κ = %{customdata:.3f}<br>%{y:.1%}<extra>" + f"{name}, {metric}</extra>"))
    if sparsity is not None:
        fig.add_vline(x=-_log_keep(sparsity), line=dict(color="#d62728", dash="dot", width=2))
    fig.update_xaxes(title_text="sparsity κ (fraction of weights cut; log scale of what is kept)",
                     tickvals=[-_log_keep(k) for k in ticks], ticktext=[f"{k:g}" for k in ticks])
    fig.update_yaxes(title_text="accuracy right after the cut", range=[0, 1.02], tickformat=".0%")
    attack = f"{profile['attack'].upper()} at ε = {profile['epsilon']:g}"
    layout(fig, f"Sparsity profile: one cut, no fine-tuning (robust: {attack}, {profile['samples']} test images)",
           height=460, legend="below")
    fig.update_layout(hovermode="closest")
    return fig


def _log_keep(k: float) -> float:
    return math.log10(max(1 - k, 1e-4))
