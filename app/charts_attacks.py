"""Plotly figures for the robustness explorer: a finished run's dense teacher and pruned model under
the same attack (examples, per-class recall, security curves). Pure functions of what
:mod:`deadwood.robustness` returns; no Streamlit, no engine calls.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .charts import FONT_SIZE, PALETTE, TEACHER_COLOR, legend_below, mark_epsilon, method_color, style


def _images(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> (N, H, W) for one channel, (N, H, W, 3) uint8 for colour."""
    if x.shape[1] == 1:
        return x[:, 0]
    return (np.clip(x.transpose(0, 2, 3, 1), 0, 1) * 255).round().astype(np.uint8)


def _verdict(pred: int, label: int, conf: float, classes: Sequence[str]) -> str:
    color = "#2ca02c" if pred == label else "#d62728"
    return f"<span style='color:{color}'>{classes[pred]} ({conf:.0%})</span>"


def adversarial_examples_figure(examples: Mapping[str, Mapping], classes: Sequence[str]) -> go.Figure:
    """The same inputs attacked against the dense teacher and the pruned model.

    ``examples`` maps 'dense' and 'pruned' to :func:`deadwood.robustness.adversarial_examples`
    results (as numpy arrays). Images: row 1 the clean inputs titled with their labels, rows 2-3
    the adversarial inputs titled with each model's prediction and confidence (green right, red
    wrong). 2-D inputs (moons) are drawn as points with arrows to their adversarial versions.
    """
    dense, pruned = examples["dense"], examples["pruned"]
    if np.asarray(dense["x"]).ndim == 2:
        return _adversarial_points_figure(examples, classes)
    n = len(dense["y"])
    rows = (("clean", None), ("vs dense", dense), ("vs pruned", pruned))
    titles = [f"label {classes[int(y)]}" for y in dense["y"]]
    for _, r in rows[1:]:
        titles += [_verdict(int(p), int(y), float(c), classes)
                   for p, y, c in zip(r["pred_adv"], r["y"], r["confidence_adv"])]
    fig = make_subplots(rows=3, cols=n, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.08)
    for row, (label, r) in enumerate(rows, 1):
        imgs = _images(np.asarray(dense["x"] if r is None else r["x_adv"]))
        for col in range(1, n + 1):
            img = imgs[col - 1]
            if img.ndim == 2:
                fig.add_trace(go.Heatmap(z=img, colorscale="Greys", zmin=0, zmax=1, showscale=False,
                                         hovertemplate="value %{z:.2f}<extra></extra>", name=label),
                              row=row, col=col)
            else:
                fig.add_trace(go.Image(z=img, name=label), row=row, col=col)
        fig.update_yaxes(title_text=label, row=row, col=1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed")
    for i in range(1, 3 * n + 1):  # square pixels in every panel
        fig.layout[f"yaxis{'' if i == 1 else i}"].scaleanchor = f"x{'' if i == 1 else i}"
    fig.update_annotations(font_size=FONT_SIZE - 2)
    attack, eps = dense.get("attack", ""), dense.get("epsilon")
    title = f"Adversarial examples: {attack}" + (f" at ε = {eps:g}" if eps is not None else " (minimal)")
    style(fig, title, height=520)
    fig.update_layout(hovermode="closest")
    return fig


def _adversarial_points_figure(examples: Mapping[str, Mapping], classes: Sequence[str]) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("attacks on the dense teacher", "attacks on the pruned model"),
                        shared_xaxes=True, shared_yaxes=True)
    for col, key in ((1, "dense"), (2, "pruned")):
        r = examples[key]
        x, xa, ok = np.asarray(r["x"]), np.asarray(r["x_adv"]), ~np.asarray(r["success"]).astype(bool)
        labels = np.asarray(r["y"]).astype(int)
        for c in sorted(set(labels.tolist())):
            fig.add_trace(go.Scatter(x=x[labels == c, 0], y=x[labels == c, 1], mode="markers",
                                     name=f"clean: {classes[c]}", marker=dict(color=PALETTE[c], size=10),
                                     showlegend=col == 1, legendgroup=f"clean-{c}"), row=1, col=col)
        for state, mask, color in (("still right", ok, "#2ca02c"), ("fooled", ~ok, "#d62728")):
            fig.add_trace(go.Scatter(x=xa[mask, 0], y=xa[mask, 1], mode="markers", name=state,
                                     marker=dict(symbol="x", size=10, color=color), legendgroup=state,
                                     showlegend=col == 1), row=1, col=col)
        for a, b in zip(x, xa):
            fig.add_annotation(x=b[0], y=b[1], ax=a[0], ay=a[1], xref=f"x{'' if col == 1 else col}",
                               yref=f"y{'' if col == 1 else col}", axref=f"x{'' if col == 1 else col}",
                               ayref=f"y{'' if col == 1 else col}", showarrow=True, arrowhead=2,
                               arrowcolor="#888", text="")
    style(fig, f"Adversarial points: {examples['dense'].get('attack', '')} (arrows: clean → attacked)",
           height=480)
    fig.update_layout(hovermode="closest", legend=dict(orientation="v", x=1.02, xanchor="left", y=1.0,
                                                       yanchor="top"))
    return fig


def class_recall_figure(pair: Mapping[str, Mapping], classes: Sequence[str], method: str = "pruned") -> go.Figure:
    """Per-class recall of the dense teacher and the pruned model, clean (solid) and under the
    attack at the evaluation's largest epsilon (hatched): which classes the attack, and the
    pruning, hurt most. ``pair`` is :func:`deadwood.robustness.evaluate_pair`'s result."""
    fig = go.Figure()
    eps = pair["pruned"]["epsilons"][-1]
    for key, label, color in (("teacher", "dense", TEACHER_COLOR), ("pruned", method, method_color(method))):
        r = pair[key]["per_class_recall"]
        fig.add_trace(go.Bar(x=list(classes), y=r["clean"], name=f"{label} · clean", marker_color=color,
                             offsetgroup=f"{key}-clean"))
        fig.add_trace(go.Bar(x=list(classes), y=r["by_epsilon"][-1], name=f"{label} · attacked (ε={eps:g})",
                             marker=dict(color=color, opacity=0.55, pattern_shape="/"),
                             offsetgroup=f"{key}-attacked"))
    fig.update_xaxes(title_text="class", type="category")
    fig.update_yaxes(title_text="recall", range=[0, 1.02], tickformat=".0%")
    style(fig, f"Per-class recall, clean and under {pair['pruned']['attack']}", height=460)
    # four bars per class: narrow gaps, and the legend under the plot rather than beside it, so the
    # bars get the figure's whole width
    fig.update_layout(barmode="group", bargap=0.12, bargroupgap=0.04, hovermode="x unified")
    return legend_below(fig, y=-0.18)


def security_figure(curves: Mapping[str, Mapping], epsilon: float | None = None, method: str = "pruned") -> go.Figure:
    """Robust accuracy as a function of ε from each sample's minimal adversarial perturbation
    (exact between the steps), for the dense teacher and the pruned model: ``curves`` maps
    'dense' and 'pruned' to :func:`deadwood.robustness.security_curve` results."""
    fig = go.Figure()
    looks = {"dense": ("dense teacher", dict(color=TEACHER_COLOR, width=3, dash="dash")),
             "pruned": (f"pruned ({method})", dict(color=method_color(method), width=3))}
    for key, c in curves.items():
        label, line = looks.get(key, (key, dict(width=3)))
        fig.add_trace(go.Scatter(x=c["epsilons"], y=c["accuracy"], name=label, mode="lines", line_shape="hv",
                                 line=line))
    first = next(iter(curves.values()), {})
    fig.update_xaxes(title_text=f"perturbation size ε ({'L2' if first.get('norm') == 'l2' else 'L∞'})")
    fig.update_yaxes(title_text="robust accuracy", range=[0, 1.02], tickformat=".0%")
    return style(fig, f"Security curve ({first.get('attack', '')}: minimal perturbation per sample)"
                  + mark_epsilon(fig, epsilon))
