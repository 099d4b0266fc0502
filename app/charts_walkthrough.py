"""Figures of the walkthrough and of a stored solve at κ (no Streamlit here).

Pure functions of what a stored solve and a run record hold: the solve's per-epoch history
(multipliers, violations, magnitude quantiles), the stored student's magnitude histogram, a cut's
masks, and the sparsity profile. Small layers' masks are drawn weight by weight; large ones as the
kept fraction per tile (:func:`mask_picture`).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .charts import (FONT_SIZE, PALETTE, TEACHER_COLOR, constraint_labels, constraint_names, dual_entries,
                     layer_labels, legend_below, multipliers_figure)

IMAGE_LIMIT = 64 * 64 * 8  # a mask with at most this many weights is drawn weight by weight
TILES = 64  # a larger one as the kept fraction over at most TILES x TILES tiles
CUT_COLOR = "#d62728"


def _style(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    """The title at the left, the app's font size, a legend under the plot (never over the title)."""
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left"), height=height, font=dict(size=FONT_SIZE),
                      margin=dict(l=60, r=20, t=90, b=60), hovermode="x unified")
    return legend_below(fig)


# --------------------------------------------------------------------------- masks

def mask_picture(mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """A layer's mask (True = kept) as a 2-D picture: rows are output units, columns every input
    weight of a unit (a convolution's kernels laid side by side). Returns ``(grid, (rows, cols))``:
    the 0/1 mask itself when it has at most :data:`IMAGE_LIMIT` weights (tile 1 x 1), else the kept
    fraction per tile of ``rows x cols`` weights, at most :data:`TILES` tiles a side."""
    m = np.asarray(mask, dtype=np.float32).reshape(mask.shape[0], -1) if mask.ndim > 1 else \
        np.asarray(mask, dtype=np.float32).reshape(1, -1)
    if m.size <= IMAGE_LIMIT:
        return m.astype(np.float16), (1, 1)
    r, c = math.ceil(m.shape[0] / TILES), math.ceil(m.shape[1] / TILES)
    pad = np.full((math.ceil(m.shape[0] / r) * r, math.ceil(m.shape[1] / c) * c), np.nan, dtype=np.float32)
    pad[:m.shape[0], :m.shape[1]] = m
    grid = np.nanmean(pad.reshape(pad.shape[0] // r, r, pad.shape[1] // c, c), axis=(1, 3))
    return grid.astype(np.float16), (r, c)


def masks_figure(pictures: Mapping[str, tuple], layer_sparsity: Mapping[str, float], sparsity: float,
                 epoch: int | None = None) -> go.Figure:
    """One panel per layer: kept weights dark, cut weights light (a tile's shade: its kept fraction).
    With ``epoch``: the cut that the weights of that solve epoch would take."""
    names = list(pictures)
    short = layer_labels(names)
    cols = min(len(names), 4)
    rows = math.ceil(len(names) / cols)
    titles = []
    for n in names:
        grid, (r, c) = pictures[n]
        how = "each weight" if (r, c) == (1, 1) else f"tiles of {r}×{c}"
        titles.append(f"{short[n]}: {layer_sparsity[n]:.1%} cut ({how})")
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.04,
                        vertical_spacing=0.12 if rows > 1 else 0.0)
    for i, n in enumerate(names):
        grid, _ = pictures[n]
        fig.add_trace(go.Heatmap(z=np.asarray(grid, dtype=float), zmin=0, zmax=1, showscale=i == 0,
                                 colorscale=[[0, "#f2e6d9"], [1, "#2c3e50"]], name=short[n],
                                 colorbar=dict(title="kept", tickformat=".0%", len=0.8),
                                 hovertemplate="unit %{y}, input %{x}<br>kept %{z:.0%}<extra>" + n + "</extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_annotations(font=dict(size=FONT_SIZE - 2))
    fig.update_layout(hovermode="closest")
    when = "" if epoch is None else f" after solve epoch {epoch}"
    return _style(fig, f"Masks at κ = {sparsity:g}{when}: rows are units, columns their input weights",
                  height=260 * rows + 120)


# --------------------------------------------------------------------------- weight magnitudes

def magnitude_histogram_figure(hist: Mapping, threshold: float | None, sparsity: float,
                               epoch: int | None = None) -> go.Figure:
    """Per layer, how many of the solved student's weights have each |w| (log axis), with the
    global threshold θ(κ): everything left of it is cut, in every layer at once. With ``epoch``: the
    student's weights at the end of that solve epoch, and the θ(κ) a cut would use then."""
    edges = np.asarray(hist["edges"])
    centres = np.sqrt(edges[:-1] * edges[1:])
    short = layer_labels(hist["counts"])
    fig = go.Figure()
    for i, (n, counts) in enumerate(hist["counts"].items()):
        total = max(sum(counts), 1)
        fig.add_trace(go.Scatter(x=centres, y=[c / total for c in counts], name=short[n], mode="lines",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2.5, shape="hvh"),
                                 hovertemplate="|w| ≈ %{x:.2g}: %{y:.1%} of the layer<extra>" + n + "</extra>"))
    title = "Solved student's |w| per layer" if epoch is None else f"|w| per layer after solve epoch {epoch}"
    if threshold is not None:
        fig.add_vline(x=threshold, line=dict(color=CUT_COLOR, dash="dash", width=2.5))
        title += f" (dashed: θ(κ = {sparsity:g}) = {threshold:.2g})"
    fig.update_xaxes(type="log", title_text="|w| (log scale)")
    fig.update_yaxes(title_text="share of the layer's weights", tickformat=".0%")
    return _style(fig, title)


def threshold_from_quantiles(quantiles: Mapping[str, Sequence[float]], dead: Mapping[str, float]) -> float | None:
    """θ(κ) read back from one epoch's quantiles and dead fractions: the |w| at which a layer the
    threshold cuts into (0 < dead < 1) reaches its dead fraction; None when it cuts no layer partly."""
    for n, q in quantiles.items():
        d = dead.get(n, 0.0)
        if 0 < d < 1:
            return float(np.interp(d, np.linspace(0, 1, len(q)), q))
    return None


def quantiles_figure(entry: Mapping, sparsity: float) -> go.Figure:
    """One epoch of the solve: per layer, the share of weights at or below each |w| (from the
    recorded quantiles, log axis), with the θ(κ) the cut would use at that epoch."""
    quantiles, dead = entry["magnitude_quantiles"], entry.get("dead_fraction", {})
    short = layer_labels(quantiles)
    fig = go.Figure()
    for i, (n, q) in enumerate(quantiles.items()):
        probs = np.linspace(0, 1, len(q))
        keep = [j for j, v in enumerate(q) if v > 0]
        fig.add_trace(go.Scatter(x=[q[j] for j in keep], y=[probs[j] for j in keep], mode="lines",
                                 name=f"{short[n]} ({dead.get(n, 0):.0%} below θ)",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2.5)))
    theta = threshold_from_quantiles(quantiles, dead)
    title = f"Weight magnitudes after solve epoch {entry.get('epoch', '')}"
    if theta is not None:
        fig.add_vline(x=theta, line=dict(color=CUT_COLOR, dash="dash", width=2.5))
        title += f" (dashed: θ(κ = {sparsity:g}) ≈ {theta:.2g})"
    fig.update_xaxes(type="log", title_text="|w| (log scale)")
    fig.update_yaxes(title_text="share of the layer at or below |w|", range=[0, 1.02], tickformat=".0%")
    return _style(fig, title)


# --------------------------------------------------------------------------- the solve

def replay_figure(history: Sequence[Mapping], epoch: int) -> go.Figure:
    """The multipliers and violations up to solve epoch ``epoch`` (1-based), on the whole solve's
    axis, the current epoch marked."""
    entries = dual_entries(history)
    fig = multipliers_figure(entries[:epoch])
    fig.update_xaxes(range=[0.5, len(entries) + 0.5])
    for col in (1, 2):
        fig.add_vline(x=epoch, line=dict(color=CUT_COLOR, dash="dot", width=2), row=1, col=col)
    fig.update_layout(title=dict(text=f"Lagrange multipliers and violations, epoch {epoch} of {len(entries)}"))
    return fig


def constraints_figure(history: Sequence[Mapping]) -> go.Figure:
    """Each constraint's violation g_j at the first and the last solve epoch (g ≤ 0: it holds)."""
    entries = dual_entries(history)
    names = constraint_names(entries)
    labels = constraint_labels(names)
    fig = go.Figure()
    for h, label, color in ((entries[0], "first epoch", "#9ecae1"), (entries[-1], "last epoch", "#08519c")):
        fig.add_trace(go.Bar(x=[labels[n] for n in names], y=[h.get("violations", {}).get(n) for n in names],
                             name=f"{label} ({h.get('epoch', '')})", marker_color=color))
    fig.add_hline(y=0, line=dict(color="#444", dash="dash", width=1))
    fig.update_yaxes(title_text="violation g  (≤ 0: satisfied)")
    fig.update_layout(barmode="group", hovermode="closest")
    return _style(fig, "The constraints of the problem: violations at the start and the end of the solve")


# --------------------------------------------------------------------------- the teacher

def _log_keep(k: float) -> float:
    return math.log10(max(1 - k, 1e-4))


def teacher_cost_figure(profile: Mapping, dense: Mapping | None = None) -> go.Figure:
    """What plain magnitude pruning costs the dense teacher: clean and robust accuracy of the
    teacher's own weights right after one global cut at every κ of ``profile`` (log scale of what
    is kept), the dense teacher's values (``dense``: clean, robust) as horizontal lines."""
    ks = profile["sparsities"]
    x = [-_log_keep(k) for k in ks]
    fig = go.Figure()
    for metric, dash in (("clean", "solid"), ("robust", "dash")):
        fig.add_trace(go.Scatter(x=x, y=profile["teacher"][metric], customdata=ks, mode="lines+markers",
                                 name=f"teacher's weights cut, {metric}", line=dict(color=TEACHER_COLOR, dash=dash),
                                 hovertemplate="κ = %{customdata:.3f}: %{y:.1%}<extra></extra>"))
        if dense and dense.get(metric) is not None:
            fig.add_hline(y=dense[metric], line=dict(color="#2ca02c", dash=dash, width=1.5))
    ticks = [k for k in (0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995) if ks[0] <= k <= ks[-1]]
    fig.update_xaxes(title_text="sparsity κ (log scale of what is kept)", tickvals=[-_log_keep(k) for k in ticks],
                     ticktext=[f"{k:g}" for k in ticks])
    fig.update_yaxes(title_text="accuracy, no fine-tuning", range=[0, 1.02], tickformat=".0%")
    attack = f"{profile['attack'].upper()} at ε = {profile['epsilon']:g}"
    return _style(fig, f"Magnitude pruning of the teacher (robust: {attack}; green: dense)")
