"""Plotly figures of a run's deployment section (:func:`deadwood.deploy.measure`): pure functions of
that dict, no Streamlit, no engine calls.

Every speed-up drawn is a measured ratio against the dense form in the same process; counts of
multiply-accumulates are labelled as counts.
"""
from __future__ import annotations

from typing import Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from deadwood.deploy.measure import SIZE_LABELS

from .charts import FONT_SIZE, PALETTE

FORM_COLORS = {"dense": "#7f7f7f", "sparse": "#1f77b4", "sparse-linear": "#17becf", "bcr": "#2ca02c",
               "semi-2:4": "#9467bd"}


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left"), height=height, font=dict(size=FONT_SIZE),
                      margin=dict(l=60, r=20, t=90, b=60), showlegend=False)
    return fig


def available(dep: Mapping) -> list[dict]:
    return [r for r in dep["forms"] if r["available"]]


def latency_figure(dep: Mapping) -> go.Figure:
    """Per batch size, each available form's median latency (ms), labelled with its speed-up against dense."""
    sizes = [str(b) for b in dep["batch_sizes"]]
    fig = make_subplots(rows=1, cols=len(sizes), subplot_titles=[f"batch {b}" for b in sizes],
                        horizontal_spacing=0.12)
    rows = available(dep)
    for i, b in enumerate(sizes, 1):
        fig.add_trace(go.Bar(
            x=[r["label"] for r in rows], y=[r["latency_s"][b] * 1e3 for r in rows],
            marker_color=[FORM_COLORS.get(r["form"], PALETTE[0]) for r in rows],
            text=[f"{r['speedup'][b]:.2f}x" for r in rows], textposition="outside",
            customdata=[[r["macs"], r["range_s"][b][0] * 1e3 if "range_s" in r else None,
                         r["range_s"][b][1] * 1e3 if "range_s" in r else None] for r in rows],
            hovertemplate="%{x}<br>%{y:.4f} ms (median)<br>range %{customdata[1]:.4f} to %{customdata[2]:.4f} ms"
                          "<br>%{customdata[0]:,} multiply-accumulates per sample (a count)<extra></extra>"),
            row=1, col=i)
        fig.update_yaxes(title_text="ms per call (median)" if i == 1 else None, row=1, col=i)
        fig.update_xaxes(tickangle=-20, row=1, col=i)
    return _layout(fig, f"Latency per execution form (speed-up vs dense above each bar; {dep['threads']} thread(s))",
                   460)


def size_figure(dep: Mapping) -> go.Figure:
    """Bytes of each export format, with the ratio to ``model.pt``."""
    sizes = dep.get("sizes") or {}
    base = sizes.get("state_dict")
    names = list(sizes)
    fig = go.Figure(go.Bar(
        y=[SIZE_LABELS.get(k, k) for k in names], x=[sizes[k] / 1024 for k in names], orientation="h",
        marker_color=["#7f7f7f" if k.startswith("state_dict") else "#1f77b4" for k in names],
        text=[f"{sizes[k] / 1024:,.1f} KiB · {base / sizes[k]:.1f}x smaller" if base and sizes[k] <= base
              else f"{sizes[k] / 1024:,.1f} KiB · {sizes[k] / base:.1f}x larger" for k in names],
        textposition="auto", hovertemplate="%{y}: %{x:,.1f} KiB<extra></extra>"))
    fig.update_xaxes(title_text="KiB on disk")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Bytes on disk per export format", 320)


def crossover_figure(dep: Mapping, batch: int | str | None = None) -> go.Figure:
    """Per layer shape, CSR's speed-up over dense against sparsity (random weights, measured); the
    crossover (where CSR starts to win) marked with a vertical tick and the run's own layer sparsities
    as diamonds on each curve."""
    c = dep.get("crossover") or {}
    batch = str(batch if batch is not None else (c.get("batch_sizes") or [None])[-1])
    fig = go.Figure()
    fig.add_hline(y=1.0, line_dash="dash", line_color="#222222", annotation_text="as fast as dense",
                  annotation_position="bottom right")
    for i, s in enumerate(c.get("shapes", [])):
        if batch not in s["speedup"]:
            continue
        color = PALETTE[i % len(PALETTE)]
        name = f"{s['label']} (batch {s['batch'][batch]})"
        fig.add_trace(go.Scatter(x=s["sparsities"], y=s["speedup"][batch], mode="lines+markers", name=name,
                                 line=dict(color=color),
                                 hovertemplate=f"{name}<br>sparsity %{{x}}<br>CSR %{{y:.2f}}x dense<extra></extra>"))
        at = s["crossover"][batch]
        if at is not None:
            fig.add_vline(x=at, line_color=color, line_dash="dot",
                          annotation_text=f"{at:.3f}", annotation_font_color=color, annotation_position="top")
        for layer, sp in s.get("run_sparsity", {}).items():
            if sp is None:
                continue
            y = _interp(s["sparsities"], s["speedup"][batch], sp)
            fig.add_trace(go.Scatter(x=[sp], y=[y], mode="markers", marker=dict(symbol="diamond", size=12,
                                                                                color=color,
                                                                                line=dict(width=1, color="#222")),
                                     name=f"{layer} in this run", showlegend=False,
                                     hovertemplate=f"{layer}: this run's sparsity %{{x:.4f}}<extra></extra>"))
    fig.update_xaxes(title_text="sparsity of the layer (random weights)")
    fig.update_yaxes(title_text="speed-up of CSR over dense (measured)", type="log")
    fig = _layout(fig, f"Where sparse execution overtakes dense on this machine (batch {batch}; dotted: the crossover,"
                       " diamonds: this run's layers)", 480)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0.0, xanchor="left"))
    return fig


def _interp(xs, ys, x) -> float:
    """``ys`` at ``x`` by linear interpolation (clamped to the ends)."""
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x <= x1:
            return y0 + (x - x0) / (x1 - x0) * (y1 - y0)
    return ys[-1]


def form_rows(dep: Mapping) -> list[dict]:
    """One table row per form: latencies, speed-ups, the count of multiply-accumulates, the check, or why not."""
    out = []
    for r in dep["forms"]:
        row = {"execution": r["label"]}
        for b in map(str, dep["batch_sizes"]):
            row[f"batch {b} (ms)"] = r["latency_s"][b] * 1e3 if r["available"] else None
            row[f"speed-up b{b}"] = r["speedup"][b] if r["available"] else None
        row["MACs per sample (count)"] = r.get("macs")
        row["same predictions"] = ("yes" if r["agreement"]["same"] else "NO") if r["available"] else ""
        row["note"] = r["note"] if not r["available"] else (
            f"max |Δlogit| {r['agreement']['max_abs_diff']:.1e}" + (f"; {r['note']}" if r["note"] else ""))
        out.append(row)
    return out
