"""Plotly figures for "Inside the network": pure functions of what deadwood.analysis returns.

No Streamlit and no engine calls here, so the notebook draws the same figures and the
tests check them without an app.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .chart_look import layout
from .charts import PALETTE, fit_range, layer_labels, legend_below, method_color

_GOLDEN = 0.6180339887498949


def color(name: str) -> str:
    """A stable colour per method (the registry's) or model name."""
    return method_color(name)


def _style(fig: go.Figure, title: str, height: int = 440) -> go.Figure:
    return layout(fig, title, height)


def region_colors(labels: np.ndarray) -> np.ndarray:
    """A hue step (0..255, one byte: figures stay small) per region id, spread by the golden
    ratio so that regions numbered one after the other get distant hues."""
    return np.floor(((np.asarray(labels) * _GOLDEN) % 1.0) * 256).astype(np.uint8)


def _small(a) -> np.ndarray:
    """Integers in the smallest type that holds them (Plotly stores arrays as typed bytes)."""
    a = np.asarray(a)
    return a.astype(np.uint8) if a.size and a.min() >= 0 and a.max() < 256 else a.astype(np.int32)


# --------------------------------------------------------------------------- linear regions

def regions_figure(panels: Sequence[tuple[str, object]], points=None, bounds: Sequence | None = None) -> go.Figure:
    """Region maps side by side: each region its colour, the decision boundary in black.

    ``panels`` holds ``(title, Regions)`` pairs; ``points`` an optional ``(x, y, labels)``
    of data drawn on every panel; ``bounds`` an optional log10 region bound per panel.
    """
    titles = []
    for i, (title, r) in enumerate(panels):
        extra = f" · bound 10^{bounds[i]:.1f}" if bounds is not None and bounds[i] is not None else ""
        titles.append(f"{title}: {r.count} regions{extra}")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, horizontal_spacing=0.06,
                        shared_yaxes=True)
    for i, (title, r) in enumerate(panels, start=1):
        fig.add_trace(go.Heatmap(z=region_colors(r.labels), x=r.xs, y=r.ys, colorscale="HSV", zmin=0, zmax=255,
                                 showscale=False, name=title, meta="regions",
                                 hovertemplate="x %{x:.3f}<br>y %{y:.3f}<extra></extra>"), row=1, col=i)
        classes = int(r.predictions.max()) + 1 if r.predictions.size else 1
        if classes > 1:
            fig.add_trace(go.Contour(z=_small(r.predictions), x=r.xs, y=r.ys, showscale=False, hoverinfo="skip",
                                     contours=dict(start=0.5, end=classes - 1.5, size=1, coloring="none"),
                                     line=dict(color="black", width=2.5), name="decision boundary",
                                     meta="boundary", showlegend=i == 1), row=1, col=i)
        if points is not None:
            x, y, lab = (np.asarray(v) for v in points)
            fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name="test points", meta="points",
                                     showlegend=i == 1, hoverinfo="skip",
                                     marker=dict(size=5, color=lab, colorscale=[[0, "white"], [1, "black"]],
                                                 line=dict(width=0.5, color="black"))), row=1, col=i)
        fig.update_xaxes(range=[r.xs[0], r.xs[-1]], constrain="domain", row=1, col=i)
        fig.update_yaxes(range=[r.ys[0], r.ys[-1]], scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    return legend_below(_style(fig, "Linear regions: one colour per ReLU activation pattern", height=580))


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Grid points on the edge of a region: their right or upper neighbour lies in another one."""
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edge


CHANGE = (("edge in both", "#9e9e9e"), ("edge of the dense teacher only: merged by pruning", "#1f77b4"),
          ("edge of the pruned model only: new", "#ff7f0e"), ("prediction changed", "#d62728"))


def regions_change(dense, pruned) -> dict:
    """Where two region maps of the same grid differ: per grid point 0 (inside a region in both), 1 to
    3 (an edge in both, in the dense map only, in the pruned map only; :data:`CHANGE`), 4 where the
    predicted class changed; and the counts of each."""
    a, b = boundaries(dense.labels), boundaries(pruned.labels)
    z = np.zeros(a.shape, dtype=np.uint8)
    z[a & b], z[a & ~b], z[~a & b] = 1, 2, 3
    changed = np.asarray(dense.predictions) != np.asarray(pruned.predictions)
    z[changed] = 4
    total = z.size
    return {"z": z, "dense": dense.count, "pruned": pruned.count, "total": total,
            "shares": {name: float(np.mean(z == i)) for i, (name, _) in enumerate(CHANGE, start=1)}}


def regions_change_figure(dense, pruned, title: str) -> go.Figure:
    """One map of what pruning changed in the input plane: region edges kept, merged away and new,
    and where the predicted class changed (:func:`regions_change`)."""
    change = regions_change(dense, pruned)
    colors = ["#ffffff"] + [c for _, c in CHANGE]
    scale = [[v, c] for i, c in enumerate(colors) for v in (i / len(colors), (i + 1) / len(colors))]
    fig = go.Figure(go.Heatmap(z=change["z"], x=dense.xs, y=dense.ys, zmin=-0.5, zmax=len(colors) - 0.5,
                               colorscale=scale, showscale=False, meta="change",
                               customdata=np.array(["inside a region in both"] + [n for n, _ in CHANGE])[change["z"]],
                               hovertemplate="x %{x:.3f}<br>y %{y:.3f}<br>%{customdata}<extra></extra>"))
    for name, color in CHANGE:  # the legend: one marker per kind of change
        share = change["shares"][name]
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{name} ({share:.1%} of the grid)",
                                 marker=dict(symbol="square", size=12, color=color)))
    fig.update_xaxes(range=[dense.xs[0], dense.xs[-1]], constrain="domain")
    fig.update_yaxes(range=[dense.ys[0], dense.ys[-1]], scaleanchor="x")
    return legend_below(_style(fig, f"{title}: {change['dense']} regions dense, {change['pruned']} pruned "
                                    "(what changed)", height=620))


def bound_figure(rows: Sequence[Mapping], counts: Mapping[str, float] | None = None) -> go.Figure:
    """log10 of the expected region bound against the kept fraction ``1 − κ`` (log axis, pruning
    deepens to the right), uniform and bound-guided allocation."""
    x = [1 - r["sparsity"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[r["log10_uniform"] for r in rows], mode="lines+markers", meta="uniform",
                             name="uniform: the same density in every layer", line=dict(color="#7f7f7f")))
    fig.add_trace(go.Scatter(x=x, y=[r["log10_guided"] for r in rows], mode="lines+markers", meta="guided",
                             name="bound-guided densities", line=dict(color="#2ca02c")))
    fig.update_xaxes(title="kept fraction 1 − κ", type="log", **_decades(x))
    fig.update_yaxes(title="log10 E[bound on linear regions]")
    return legend_below(_style(fig, "Cai et al.'s region bound as pruning deepens"))


def _decades(values: Sequence[float]) -> dict:
    """A log axis, reversed, from the power of ten above ``values`` to the one below, ticked only at
    powers of ten written as plain decimals (1, 0.1, 0.01): Plotly's default labels the minor
    ticks too, which reads "5 2 0.1 5 2 0.01"."""
    if not values or min(values) <= 0:
        return dict(autorange="reversed")
    top, bottom = int(np.ceil(np.log10(max(values)) - 1e-9)), int(np.floor(np.log10(min(values)) + 1e-9))
    ticks = [10.0 ** e for e in range(top, bottom - 1, -1)]
    return dict(range=[top, bottom], tickmode="array", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])


def allocation_figure(densities: Mapping[str, Mapping[str, float]]) -> go.Figure:
    """Per-layer density of each allocation (``{allocation: {layer: density}}``) on a linear axis,
    each bar labelled with its value: on a log axis a 0.005 bar looked like nothing."""
    fig = go.Figure()
    for i, (name, d) in enumerate(densities.items()):
        labels = layer_labels(d)
        fig.add_trace(go.Bar(x=[labels[n] for n in d], y=list(d.values()), name=name, meta=name,
                             marker_color=PALETTE[i % len(PALETTE)], text=[_percent(v) for v in d.values()],
                             textposition="outside", cliponaxis=False, customdata=list(d),
                             hovertemplate="%{customdata}: %{y:.3%} kept<extra>" + name + "</extra>"))
    top = max((v for d in densities.values() for v in d.values()), default=1.0)
    fig.update_yaxes(title="density (kept fraction)", rangemode="tozero", tickformat=".1~%",
                     range=[0, top * 1.18 or 1.0])
    fig.update_layout(barmode="group")
    return legend_below(_style(fig, "Per-layer density at the same global sparsity"))


def _percent(v: float) -> str:
    """Two significant digits as a percentage: 5.0%, 0.50%, 0.020%."""
    return f"{v:.2%}" if v < 0.01 else f"{v:.1%}"


# --------------------------------------------------------------------------- similarity

CONTRASTS = ("dense, another seed", "magnitude mask, re-initialised and retrained",
             "random mask, matched per-layer sparsity")
CONTRAST_COLORS = ("#393b79", "#ad494a", "#8c6d31")  # dark blue, brick, ochre: no method's colour


def similarity_figure(study: Mapping) -> go.Figure:
    """Per-layer SVCCA to the dense teacher: methods solid, Blakeney et al.'s references dashed."""
    layers = study["layers"]
    labels = layer_labels(layers)
    fig = go.Figure()
    for name, sims in study["similarity"].items():
        ref = name in CONTRASTS
        fig.add_trace(go.Scatter(x=[labels[n] for n in layers], y=[sims[n] for n in layers], name=name,
                                 meta=name, mode="lines+markers",
                                 line=dict(color=CONTRAST_COLORS[CONTRASTS.index(name)] if ref else color(name),
                                           dash="dash" if ref else "solid")))
    values = [v for sims in study["similarity"].values() for v in sims.values() if v is not None]
    fig.update_yaxes(title="SVCCA with the dense teacher", range=fit_range(values))  # the lines, not 0-1
    fig.update_xaxes(title="layer (input → output)", type="category")
    return _style(fig, f"Representation similarity at κ = {study.get('sparsity', float('nan')):g}")


# --------------------------------------------------------------------------- recall distortion

def distortion_figure(rows: Sequence[Mapping]) -> go.Figure:
    """Intensification α against sparsity per method, clean and under attack (α = 1: unchanged)."""
    attacked = any("alpha_attack" in r for r in rows)
    eps = next((r.get("epsilon") for r in rows), None)
    titles = ["clean"] + ([f"under PGD, ε = {eps:g}"] if attacked else [])
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, shared_yaxes=True)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for col, part in enumerate(["clean", "attack"][:len(titles)], start=1):
        for m in methods:
            mine = sorted((r for r in rows if r["method"] == m), key=lambda r: r["sparsity"])
            fig.add_trace(go.Scatter(x=[r["sparsity"] for r in mine], y=[r[f"alpha_{part}"] for r in mine],
                                     name=m, meta=f"{m}:{part}", mode="lines+markers", showlegend=col == 1,
                                     line=dict(color=color(m))), row=1, col=col)
        fig.add_hline(y=1.0, line=dict(color="black", dash="dot"), row=1, col=col)
        fig.update_xaxes(title="sparsity κ", range=fit_range([r["sparsity"] for r in rows], lo=0.0, hi=1.0),
                         row=1, col=col)
    fig.update_yaxes(title="α (> 1 intensifies, < 1 attenuates)", row=1, col=1)
    return legend_below(_style(fig, "Recall distortion: does pruning widen the gap between classes?", height=480))


def balance_figure(result: Mapping, classes: Sequence[str]) -> go.Figure:
    """Per-class balances B_c of the dense and pruned model (``recall_distortion``'s result)."""
    parts = [p for p in ("clean", "attack") if p in result]
    titles = [f"{p} · α = {result[p]['alpha']:.2f}" if p == "clean" else
              f"under PGD, ε = {result[p]['epsilon']:g} · α = {result[p]['alpha']:.2f}" for p in parts]
    fig = make_subplots(rows=1, cols=len(parts), subplot_titles=titles, shared_yaxes=True)
    for col, p in enumerate(parts, start=1):
        for who, shade in (("dense", "#8c564b"), ("pruned", "#1f77b4")):
            fig.add_trace(go.Bar(x=list(classes), y=result[p][who]["balance"], name=who, meta=f"{who}:{p}",
                                 marker_color=shade, showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(title="class", type="category", row=1, col=col)
    fig.update_yaxes(title="B_c = (recall_c − acc) / acc", row=1, col=1)
    fig.update_layout(barmode="group")
    return legend_below(_style(fig, "Per-class recall balance before and after pruning", height=480))


# --------------------------------------------------------------------------- block structure

def mask_figure(matrices: Mapping[str, np.ndarray], layer: str) -> go.Figure:
    """One layer's mask in GEMM form under each granularity (dark = kept); ``layer`` is its label
    (:func:`app.charts.layer_labels`)."""
    names = list(matrices)
    titles = [f"{n}: {1 - float(np.mean(m)):.1%} cut" for n, m in matrices.items()]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=titles, horizontal_spacing=0.05)
    for col, n in enumerate(names, start=1):
        fig.add_trace(go.Heatmap(z=_small(matrices[n]), colorscale=[[0, "#f4f1ea"], [1, "#1b4332"]], zmin=0, zmax=1,
                                 showscale=False, name=n, meta=n,
                                 hovertemplate="row %{y}<br>column %{x}<br>kept %{z}<extra></extra>"), row=1, col=col)
        fig.update_yaxes(autorange="reversed", title="output" if col == 1 else None, row=1, col=col)
        fig.update_xaxes(title="input (x kernel)", row=1, col=col)
    return _style(fig, f"Mask of {layer}: unstructured against block rows and columns", height=520)
