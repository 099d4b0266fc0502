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

from .chart_look import PALETTE, distinct_colors, layout

FORM_COLORS = {"dense": "#7f7f7f", "sparse": "#1f77b4", "sparse-linear": "#17becf", "bcr": "#2ca02c",
               "semi-2:4": "#9467bd"}


def _layout(fig: go.Figure, title: str, height: int, legend: str = "none") -> go.Figure:
    return layout(fig, title, height, legend)


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
    return _layout(fig, f"Latency per execution form (speed-up against dense above each bar; {dep['threads']} "
                        "torch thread(s))", 480)


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
    fig.add_hline(y=1.0, line_dash="dash", line_color="#222222")
    shapes = [s for s in c.get("shapes", []) if batch in s["speedup"]]
    for s, color in zip(shapes, distinct_colors(len(shapes))):
        at = s["crossover"][batch]
        name = f"{s['label']} (batch {s['batch'][batch]}" + (f"; crossover {at:.3f})" if at is not None else ")")
        fig.add_trace(go.Scatter(x=s["sparsities"], y=s["speedup"][batch], mode="lines+markers", name=name,
                                 line=dict(color=color),
                                 hovertemplate=f"{name}<br>sparsity %{{x}}<br>CSR %{{y:.2f}}x dense<extra></extra>"))
        if at is not None:  # its value is in the legend: labels on the lines ran into each other
            fig.add_vline(x=at, line_color=color, line_dash="dot")
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
    fig.update_yaxes(title_text="CSR speed-up over dense (measured; dashed: 1×)", type="log")
    return _layout(fig, f"Where sparse beats dense (batch {batch}; dotted: crossover, diamonds: this run's layers)",
                   520, legend="below")


def _interp(xs, ys, x) -> float:
    """``ys`` at ``x`` by linear interpolation (clamped to the ends)."""
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x <= x1:
            return y0 + (x - x0) / (x1 - x0) * (y1 - y0)
    return ys[-1]


def form_rows(dep: Mapping) -> list[dict]:
    """One table row per form: latencies, speed-ups, the count of multiply-accumulates, and whether its
    predictions match dense (None where the form was not built); why a form was not built, and the
    notes, are :func:`form_notes`' (a table cell cut them off)."""
    out = []
    for r in dep["forms"]:
        row = {"execution": r["label"]}
        for b in map(str, dep["batch_sizes"]):
            row[f"batch {b} (ms)"] = r["latency_s"][b] * 1e3 if r["available"] else None
            row[f"speed-up b{b}"] = r["speedup"][b] if r["available"] else None
        row["MACs per sample (count)"] = r.get("macs")
        row["same predictions"] = (("yes" if r["agreement"]["same"] else "NO")
                                   + f" (max |Δlogit| {r['agreement']['max_abs_diff']:.1e})") if r["available"] else ""
        out.append(row)
    return out


def form_table(dep: Mapping) -> list[dict]:
    """:func:`form_rows` as the page shows it: every form, each number written out (milliseconds to
    four decimals, speed-ups as 1.23x, counts with separators) and "not built" where a form has none,
    never a bare None cell."""
    def cell(key: str, v) -> str:
        if v is None:
            return "not built"
        if key.startswith("speed-up"):
            return f"{v:.2f}x"
        if key.endswith("(ms)"):
            return f"{v:.4f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    return [{k: v if k == "execution" else (v or "not built") if k == "same predictions" else cell(k, v)
             for k, v in row.items()} for row in form_rows(dep)]


def form_notes(dep: Mapping) -> list[str]:
    """One line per form that has something to say: why it was not built, or a note on its numbers."""
    return [f"{r['label']}: {r['note']}" for r in dep["forms"] if r["note"]]
