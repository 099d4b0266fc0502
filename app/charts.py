"""Plotly figures from run records: pure functions, no Streamlit, no engine calls.

Every builder takes what a :class:`deadwood.RunRecord` holds (the record itself,
its ``history`` list, or several records) and returns a ``plotly.graph_objects.Figure``.
The live page feeds the same builders a history that is still growing. The shared look (colours,
legends, titles) is :mod:`app.chart_look`'s, re-exported here; the other ``charts_*`` modules draw what one
page shows (``charts_attacks``: the robustness explorer; ``charts_inside``, ``charts_deploy``,
``charts_profile``).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from deadwood.bench import pareto_front
from deadwood.methods import method_colours, methods

from .chart_look import CONSTRAINT_COLORS, FONT_SIZE, MANY_LAYERS, PALETTE, TEACHER_COLOR, layer_colors, layout
from .chart_look import legend_below  # noqa: F401  (re-exported: the chart modules import it from here)

# A method's own Stage 1 is drawn in the method's colour.
PHASE_COLORS = {"teacher": "#8c564b", "finetune": "#1f77b4",
                **{m.stage.name: m.color for m in methods() if m.stage is not None}}
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon", "pentagon",
            "triangle-down")
HIGHLIGHTED = 5  # layers drawn one by one in the multipliers chart once they are many (the largest final λ)


def method_color(name: str) -> str:
    """The method's colour in every chart (:func:`deadwood.methods.method_colours`)."""
    return method_colours([name])[name]


def layer_labels(names: Iterable[str]) -> dict[str, str]:
    """``layer 1``, ``layer 2``, ... in the order given: records list prunable tensors in model order,
    and a module path such as ``4.weight`` means little to a reader (it stays in the hover text)."""
    return {n: f"layer {i}" for i, n in enumerate(names, 1)}


def constraint_labels(names: Sequence[str]) -> dict[str, str]:
    """Readable names for the engine's constraint keys (``rep:<layer>``, ``kd``, ``rob``)."""
    layers = layer_labels(n[4:] for n in names if n.startswith("rep:"))
    fixed = {"kd": "distillation (KL)", "rob": "robustness (adv. loss)"}
    return {n: f"{layers[n[4:]]} output" if n.startswith("rep:") else fixed.get(n, n) for n in names}


def style(fig: go.Figure, title: str, height: int = 420, legend: str = "auto") -> go.Figure:
    """The common look (:func:`app.chart_look.layout`) with hover along x, as the line charts want."""
    layout(fig, title, height, legend)
    fig.update_layout(hovermode="x unified")
    return fig


def _field(record, name):
    return record[name] if isinstance(record, Mapping) else getattr(record, name)


def _optional(record, name):
    """``record``'s field ``name``, or None when a record given as a dict lacks it."""
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)


# --------------------------------------------------------------------------- one run

def dual_entries(history: Iterable[dict]) -> list[dict]:
    """The history entries of the dual solve (those that carry multipliers)."""
    return [h for h in history if h.get("lambdas")]


def constraint_names(history: Iterable[dict]) -> list[str]:
    names: dict[str, None] = {}
    for h in dual_entries(history):
        names.update(dict.fromkeys(h["lambdas"]))
    return list(names)


def constraint_colors(names: Sequence[str]) -> dict[str, str]:
    """A colour per constraint: layers by :func:`app.chart_look.layer_colors`, distillation and
    robustness their own (:data:`app.chart_look.CONSTRAINT_COLORS`), which no layer takes."""
    layers = [n for n in names if n.startswith("rep:")]
    out = dict(zip(layers, layer_colors(len(layers))))
    return {n: out.get(n) or CONSTRAINT_COLORS.get(n, "#555555") for n in names}


def multipliers_figure(history: Sequence[dict]) -> go.Figure:
    """Left: each constraint's multiplier λ_j per epoch; right: its mean violation g_j.

    One trace per constraint in each panel, the same colour in both, x-axes linked
    (zooming one zooms the other). g_j <= 0 means the constraint is satisfied. When the
    constraints stay on during fine-tuning, its epochs follow the solve's, after a line
    marking the cut. Past :data:`app.chart_look.MANY_LAYERS` layers, the layer constraints are a
    band (min to max over the layers, with their median) and only the :data:`HIGHLIGHTED` layers
    with the largest final λ are drawn one by one (:func:`_layer_band`).
    """
    entries = dual_entries(history)
    names = constraint_names(entries)
    labels = constraint_labels(names)
    colors = constraint_colors(names)
    xs_all = list(range(1, len(entries) + 1))  # epochs in order, across the solve and the fine-tune
    fig = make_subplots(rows=1, cols=2, shared_xaxes="all", horizontal_spacing=0.09)
    layers = [n for n in names if n.startswith("rep:")]
    drawn = names
    if len(layers) > MANY_LAYERS:
        last = {n: next((h["lambdas"][n] for h in reversed(entries) if n in h["lambdas"]), 0.0) for n in layers}
        top = sorted(layers, key=lambda n: -last[n])[:HIGHLIGHTED]
        _layer_band(fig, entries, xs_all, layers, labels)
        colors.update(zip(top, [c for c in PALETTE if c not in CONSTRAINT_COLORS.values()]))
        drawn = [n for n in names if n in top or not n.startswith("rep:")]
    for name in drawn:
        rows = [(x, h) for x, h in zip(xs_all, entries) if name in h["lambdas"]]
        label = labels[name] + (" (top λ)" if len(layers) > MANY_LAYERS and name in layers else "")
        common = dict(x=[x for x, _ in rows], mode="lines+markers", legendgroup=name, name=label,
                      line=dict(color=colors[name], width=2.5), marker=dict(size=6), meta=name)
        fig.add_trace(go.Scatter(y=[h["lambdas"][name] for _, h in rows], **common), row=1, col=1)
        fig.add_trace(go.Scatter(y=[h.get("violations", {}).get(name) for _, h in rows], showlegend=False,
                                 **common), row=1, col=2)
    fig.add_hline(y=0, line=dict(color="#444", dash="dash", width=1), row=1, col=2)
    phases = [h.get("phase") for h in entries]
    if "finetune" in phases:
        cut = phases.index("finetune") + 0.5
        for col in (1, 2):
            fig.add_vline(x=cut, line=dict(color="#d62728", dash="dot"), row=1, col=col)
        fig.update_xaxes(title_text="epoch (dual solve | cut | fine-tune)")
    else:
        fig.update_xaxes(title_text="dual epoch")
    fig.update_yaxes(title_text="multiplier λ", row=1, col=1)
    fig.update_yaxes(title_text="violation g  (≤ 0: satisfied)", row=1, col=2)
    return style(fig, "Lagrange multipliers and constraint violations", height=460)


def _layer_band(fig: go.Figure, entries: Sequence[dict], xs: Sequence[int], layers: Sequence[str],
                labels: Mapping[str, str]) -> None:
    """In each panel, the layer constraints as one grey band from their smallest to their largest value
    at each epoch, and their median dashed; the median's hover names the layer at the top."""
    band = dict(color="rgba(110,110,110,0.9)")
    for col, key in ((1, "lambdas"), (2, "violations")):
        lo, hi, mid, tops = [], [], [], []
        for h in entries:
            values = {n: h.get(key, {}).get(n) for n in layers}
            values = {n: v for n, v in values.items() if v is not None}
            ordered = sorted(values.values())
            lo.append(ordered[0] if ordered else None)
            hi.append(ordered[-1] if ordered else None)
            mid.append(ordered[len(ordered) // 2] if ordered else None)
            tops.append(labels[max(values, key=values.get)] if values else "")
        group = dict(legendgroup="layer band", showlegend=False, hoverinfo="skip")
        fig.add_trace(go.Scatter(x=list(xs), y=hi, mode="lines", line=dict(width=0), meta="band:max", name="max",
                                 **group), row=1, col=col)
        fig.add_trace(go.Scatter(x=list(xs), y=lo, mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor="rgba(110,110,110,0.22)", meta="band:min",
                                 name=f"all {len(layers)} layers: min to max", legendgroup="layer band",
                                 showlegend=col == 1, hoverinfo="skip"), row=1, col=col)
        fig.add_trace(go.Scatter(x=list(xs), y=mid, mode="lines", line=dict(dash="dash", width=2, **band),
                                 meta="band:median", name="median over layers", legendgroup="layer median",
                                 showlegend=col == 1, customdata=list(zip(tops, hi, lo)),
                                 hovertemplate="layers: median %{y:.3g}, max %{customdata[1]:.3g} (%{customdata[0]}), "
                                               "min %{customdata[2]:.3g}<extra></extra>"), row=1, col=col)


def layer_sparsity_figure(record) -> go.Figure:
    """One bar per prunable layer: its fraction of zero weights, labelled with its weight count.

    The dashed line is the global sparsity the single cut produced; bars above it
    are layers the cut hit harder than average. Past :data:`app.chart_look.MANY_LAYERS` layers the
    bars lie on their side, one row per layer, and the chart grows in height (the page scrolls).
    """
    sparsity, sizes = _field(record, "layer_sparsity"), _field(record, "layer_sizes")
    names = list(sparsity)
    short = layer_labels(names)
    kept = [round(sizes[n] * (1 - sparsity[n])) for n in names]
    glob = _field(record, "global_sparsity")
    many = len(names) > MANY_LAYERS
    common = dict(marker_color="#8c564b", name="zero fraction", text=[f"{sparsity[n]:.1%}" for n in names],
                  customdata=[[sizes[n], k, n] for n, k in zip(names, kept)])
    if many:
        fig = go.Figure(go.Bar(y=[f"{short[n]} ({sizes[n]:,})" for n in names], x=[sparsity[n] for n in names],
                               orientation="h", textposition="inside", insidetextanchor="end",
                               textfont=dict(color="white", size=FONT_SIZE - 3),
                               hovertemplate="%{customdata[2]}<br>zero: %{x:.2%}<br>kept %{customdata[1]:,} of "
                                             "%{customdata[0]:,}<extra></extra>", **common))
        fig.add_vline(x=glob, line=dict(color=TEACHER_COLOR, dash="dash"))
        fig.update_xaxes(title_text="fraction of weights set to zero", range=[0, 1.02], tickformat=".0%")
        fig.update_yaxes(autorange="reversed", title_text="layer (weights)", tickfont=dict(size=FONT_SIZE - 3))
        height = 150 + 22 * len(names)
    else:
        fig = go.Figure(go.Bar(
            x=[f"{short[n]}<br>{sizes[n]:,} weights" for n in names], y=[sparsity[n] for n in names],
            textposition="inside", insidetextanchor="end", textfont=dict(color="white", size=FONT_SIZE + 2),
            hovertemplate="%{customdata[2]}<br>zero: %{y:.2%}<br>kept %{customdata[1]:,} of %{customdata[0]:,}"
                          "<extra></extra>", **common))
        fig.add_hline(y=glob, line=dict(color=TEACHER_COLOR, dash="dash"))
        fig.update_yaxes(title_text="fraction of weights set to zero", range=[0, 1.02], tickformat=".0%")
        height = 420
    style(fig, f"Per-layer sparsity after one global cut (dashed: global {glob:.1%})", height=height, legend="none")
    fig.update_layout(hovermode="closest")
    return fig


def _curve(rob: dict):
    return rob.get("epsilons", []), rob.get("accuracy", [])


def robustness_figure(record, others: Mapping[str, object] | None = None,
                      epsilon: float | None = None) -> go.Figure:
    """Accuracy under the record's attack against epsilon: the pruned model, its dense teacher,
    and ``others`` (label -> record of another method at the same sparsity)."""
    cfg = _field(record, "config")
    rob = _field(record, "robustness")
    fig = go.Figure()
    teacher = _field(record, "teacher") or {}
    if teacher.get("robustness"):
        x, y = _curve(teacher["robustness"])
        fig.add_trace(go.Scatter(x=x, y=y, name="dense teacher", mode="lines+markers",
                                 line=dict(color=TEACHER_COLOR, dash="dash", width=2.5)))
    for label, other in (others or {}).items():
        x, y = _curve(_field(other, "robustness"))
        m = _field(other, "config").get("method", label)
        fig.add_trace(go.Scatter(x=x, y=y, name=label, mode="lines+markers", opacity=0.75,
                                 line=dict(color=method_color(m), width=2)))
    x, y = _curve(rob)
    fig.add_trace(go.Scatter(x=x, y=y, name=f"{cfg['method']} (this run)", mode="lines+markers",
                             line=dict(color=method_color(cfg["method"]), width=4), marker=dict(size=9)))
    fig.update_xaxes(title_text=f"attack budget ε (L∞, {rob.get('attack', 'pgd').upper()}-{rob.get('steps', '')})")
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], tickformat=".0%")
    return style(fig, f"Robustness at sparsity {cfg['sparsity']:.1%}" + mark_epsilon(fig, epsilon))


def mark_epsilon(fig: go.Figure, epsilon: float | None) -> str:
    """Mark the chosen ε with a dotted line and return the title's note for it: a label on the
    plot would cover the curves' points (at ε = 0, the first one)."""
    if epsilon is None:
        return ""
    fig.add_vline(x=epsilon, line=dict(color="#d62728", dash="dot"))
    return f" (dotted: ε = {epsilon:g})"


def dead_wood_figure(history: Sequence[dict], sparsity: float | None = None) -> go.Figure:
    """Top: per layer, the fraction of weights at or below the would-be global threshold θ(κ),
    after each dual epoch: the dead wood forming before the cut. Bottom, on its own axis (the
    two would overlap on one): held-out accuracy. The panels share the epoch axis."""
    entries = [h for h in history if h.get("dead_fraction")]
    accuracy = bool(entries) and "accuracy" in entries[0]
    fig = make_subplots(rows=2 if accuracy else 1, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.68, 0.32] if accuracy else None)
    layers: dict[str, None] = {}
    for h in entries:
        layers.update(dict.fromkeys(h["dead_fraction"]))
    short = layer_labels(layers)
    many = len(layers) > MANY_LAYERS  # then colour by depth, with a colour bar for the legend
    for layer, color in zip(layers, layer_colors(len(layers))):
        fig.add_trace(go.Scatter(x=[h["epoch"] for h in entries],
                                 y=[h["dead_fraction"].get(layer) for h in entries], showlegend=not many,
                                 name=short[layer], mode="lines" if many else "lines+markers", meta=layer,
                                 line=dict(color=color, width=1.5 if many else 2.5)), row=1, col=1)
    if many:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                                 meta="scale", marker=dict(
                                     color=[1], cmin=1, cmax=len(layers), showscale=True,
                                     colorscale=[[i / 9, c] for i, c in enumerate(layer_colors(10))],
                                     colorbar=dict(title="layer", len=0.6, y=1.0, yanchor="top"))), row=1, col=1)
    if accuracy:
        ys = [h.get("accuracy") for h in entries]
        fig.add_trace(go.Scatter(x=[h["epoch"] for h in entries], y=ys, name="held-out accuracy",
                                 mode="lines+markers", line=dict(color=TEACHER_COLOR, dash="dot", width=2)),
                      row=2, col=1)
        fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=fit_range([y for y in ys if y is not None]),
                         row=2, col=1)
        fig.update_xaxes(title_text="dual epoch", row=2, col=1)
    else:
        fig.update_xaxes(title_text="dual epoch")
    title = "Dead wood forming during the dual solve"
    if sparsity is not None:
        fig.add_hline(y=sparsity, line=dict(color="#d62728", dash="dash"), row=1, col=1)
        title += f" (dashed: target κ = {sparsity:.1%})"
    fig.update_yaxes(title_text="fraction below θ(κ)", range=[0, 1.02], tickformat=".0%", row=1, col=1)
    return style(fig, title, height=520 if accuracy else 420)


def fit_range(values: Sequence[float], lo: float = -0.02, hi: float = 1.02,
              pad: float = 0.05) -> list[float] | None:
    """An axis range around ``values`` (a margin of ``pad`` of their span, at least 0.02), kept
    inside ``[lo, hi]``: points bunched near the top of a 0-1 axis spread over the whole axis."""
    if not values:
        return None
    a, b = min(values), max(values)
    margin = max((b - a) * pad, 0.02)
    return [max(lo, a - margin), min(hi, b + margin)]


def training_figure(history: Sequence[dict]) -> go.Figure:
    """Held-out accuracy after every epoch, stage after stage (teacher, solve, fine-tune)."""
    fig = go.Figure()
    step = 0
    by_phase: dict[str, tuple[list, list]] = {}
    for h in history:
        if "accuracy" not in h or h.get("phase") not in PHASE_COLORS:
            continue
        step += 1
        xs, ys = by_phase.setdefault(h["phase"], ([], []))
        xs.append(step)
        ys.append(h["accuracy"])
    for phase, (xs, ys) in by_phase.items():
        fig.add_trace(go.Scatter(x=xs, y=ys, name=phase, mode="lines+markers",
                                 line=dict(color=PHASE_COLORS[phase], width=2.5)))
    fig.update_xaxes(title_text="epoch (all stages in order)")
    fig.update_yaxes(title_text="held-out accuracy", tickformat=".0%")
    return style(fig, "Accuracy through the stages")


# --------------------------------------------------------------------------- many runs

def _robust(record, epsilon: float):
    if hasattr(record, "robust_accuracy"):
        return record.robust_accuracy(epsilon)
    for e, a in zip(*_curve(_field(record, "robustness"))):
        if abs(e - epsilon) < 1e-12:
            return a
    return None


def _sparsity_symbols(records) -> dict[float, str]:
    levels = sorted({_field(r, "config")["sparsity"] for r in records})
    return {s: _SYMBOLS[i % len(_SYMBOLS)] for i, s in enumerate(levels)}


def pareto_figure(records: Sequence, epsilon: float, teacher: dict | None = None) -> go.Figure:
    """Clean against robust accuracy (at ``epsilon``): one trace per method, a marker shape per
    sparsity, the non-dominated front dashed, the dense teacher as a star."""
    fig = go.Figure()
    symbols = _sparsity_symbols(records)
    methods: dict[str, list] = {}
    for r in records:
        methods.setdefault(_field(r, "config")["method"], []).append(r)
    points = []
    for method, rs in methods.items():
        rs = sorted(rs, key=lambda r: _field(r, "config")["sparsity"])
        xs = [_field(r, "clean_accuracy") for r in rs]
        ys = [_robust(r, epsilon) for r in rs]
        ks = [_field(r, "config")["sparsity"] for r in rs]
        points += [(x, y) for x, y in zip(xs, ys) if y is not None]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, name=method, mode="markers+lines", line=dict(color=method_color(method), width=1),
            marker=dict(color=method_color(method), size=14, symbol=[symbols[k] for k in ks],
                        line=dict(color="white", width=1)),
            customdata=ks, hovertemplate=method + " κ=%{customdata:.3f}<br>clean %{x:.1%}, robust %{y:.1%}"
                                          "<extra></extra>"))
    if len(points) > 1:
        front = pareto_front(points)
        fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], name="Pareto front",
                                 mode="lines", line=dict(color="#999", dash="dash"), hoverinfo="skip"))
    if teacher:
        fig.add_trace(go.Scatter(x=[teacher["clean_accuracy"]], y=[_robust(teacher, epsilon)],
                                 name="dense teacher", mode="markers",
                                 marker=dict(symbol="star", size=18, color=TEACHER_COLOR)))
    # Legend entries for the marker shapes (sparsity levels), drawn as grey markers.
    for k, sym in symbols.items():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"κ = {k:g}",
                                 marker=dict(symbol=sym, size=12, color="#777"), legendgroup="sparsity"))
    fig.update_xaxes(title_text="clean accuracy", tickformat=".1%")  # points often lie within a few %
    fig.update_yaxes(title_text=f"robust accuracy at ε = {epsilon:g}", tickformat=".1%")
    style(fig, "Clean vs robust accuracy", height=460)
    # methods, teacher and marker shapes make a long legend: a column beside the plot
    fig.update_layout(hovermode="closest", legend=dict(orientation="v", x=1.02, xanchor="left", y=1.0,
                                                       yanchor="top"))
    return fig


def sparsity_sweep_figure(records: Sequence, epsilon: float, teacher: dict | None = None) -> go.Figure:
    """Robust accuracy at ``epsilon`` against target sparsity, one line per method."""
    fig = go.Figure()
    methods: dict[str, list] = {}
    for r in records:
        methods.setdefault(_field(r, "config")["method"], []).append(r)
    levels = sorted({_field(r, "config")["sparsity"] for r in records})
    for method, rs in methods.items():
        rs = sorted(rs, key=lambda r: _field(r, "config")["sparsity"])
        fig.add_trace(go.Scatter(x=[f"{_field(r, 'config')['sparsity']:.1%}" for r in rs],
                                 y=[_robust(r, epsilon) for r in rs], name=method, mode="lines+markers",
                                 line=dict(color=method_color(method), width=3), marker=dict(size=10)))
    ticks = [f"{k:.1%}" for k in levels]
    if teacher and _robust(teacher, epsilon) is not None and ticks:
        fig.add_trace(go.Scatter(x=[ticks[0], ticks[-1]], y=[_robust(teacher, epsilon)] * 2, name="dense teacher",
                                 mode="lines", line=dict(color=TEACHER_COLOR, dash="dash", width=2)))
    fig.update_xaxes(title_text="target sparsity κ", type="category",
                     categoryorder="array", categoryarray=ticks)
    fig.update_yaxes(title_text=f"robust accuracy at ε = {epsilon:g}", tickformat=".0%", rangemode="tozero")
    return style(fig, "Robust accuracy vs sparsity", height=460)


def comparison_rows(records: Sequence, epsilon: float) -> list[dict]:
    """One table row per run: what the Pareto chart shows, plus the cut's immediate cost and time."""
    rows = []
    for r in records:
        cfg = _field(r, "config")
        rows.append({"method": cfg["method"], "target sparsity": cfg["sparsity"],
                     "global sparsity": _field(r, "global_sparsity"),
                     "accuracy after cut": _field(r, "one_shot_accuracy"),
                     "clean accuracy": _field(r, "clean_accuracy"),
                     f"robust accuracy (ε={epsilon:g})": _robust(r, epsilon),
                     "seconds": own_seconds(r)})
    return sorted(rows, key=lambda row: (row["method"], row["target sparsity"]))


# The table's help for its seconds column: what :func:`own_seconds` counts.
SECONDS_HELP = ("This run's own work: its pruning (the cut, or HYDRA's, GMP's or HARP's own stage), fine-tune and "
                "evaluation. Not counted: the dense teacher and a Deadwooding solve, which the runs at these "
                "settings share (the first run to need one computes it, the others read it); the line under the "
                "table says which run paid for them.")


def shared_seconds(record) -> dict[str, float]:
    """Work of ``record``'s run that other runs reuse, in seconds: ``teacher`` when this run trained
    it (data loading included), ``solve`` when it computed a stored solve (Deadwooding) rather than
    reading it (the solve's profile included)."""
    t = _optional(record, "timings") or {}
    out = {}
    if not (_optional(record, "teacher") or {}).get("cached", True):
        out["teacher"] = t.get("data", 0.0) + t.get("teacher", 0.0)
    if (_optional(record, "prune_info") or {}).get("solve_cached") is False:
        out["solve"] = t.get("prune", 0.0) + t.get("profile", 0.0)
    return out


def own_seconds(record) -> float | None:
    """The run's wall time less the teacher (trained or read) and a solve it computed for others too."""
    t = _optional(record, "timings") or {}
    if t.get("total") is None:
        return None
    shared = shared_seconds(record)
    teacher = shared.get("teacher", t.get("data", 0.0) + t.get("teacher", 0.0))
    return max(0.0, t["total"] - teacher - shared.get("solve", 0.0))


def to_html(fig: go.Figure) -> bytes:
    """A self-contained HTML file of ``fig`` (plotly.js embedded, so it opens offline)."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode()
