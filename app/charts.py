"""Plotly figures from run records: pure functions, no Streamlit, no engine calls.

Every builder takes what a :class:`deadwood.RunRecord` holds (the record itself,
its ``history`` list, or several records) and returns a ``plotly.graph_objects.Figure``.
The live page feeds the same builders a history that is still growing.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from deadwood.bench import pareto_front
from deadwood.methods import get_method, method_names, methods

TEACHER_COLOR = "#222222"
# A method's own Stage 1 is drawn in the method's colour.
PHASE_COLORS = {"teacher": "#8c564b", "finetune": "#1f77b4",
                **{m.stage.name: m.color for m in methods() if m.stage is not None}}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon", "pentagon",
            "triangle-down")
FONT_SIZE = 15  # readable when projected


def method_color(name: str) -> str:
    """The method's colour from the registry; a stable pick for a name it does not know
    (str hash changes from one process to the next, so the characters decide)."""
    if name in method_names():
        return get_method(name).color
    return PALETTE[sum(map(ord, name)) % len(PALETTE)]


def layer_labels(names: Iterable[str]) -> dict[str, str]:
    """``layer 1``, ``layer 2``, ... in the order given: records list prunable tensors in model order,
    and a module path such as ``4.weight`` means little to a reader (it stays in the hover text)."""
    return {n: f"layer {i}" for i, n in enumerate(names, 1)}


def constraint_labels(names: Sequence[str]) -> dict[str, str]:
    """Readable names for the engine's constraint keys (``rep:<layer>``, ``kd``, ``rob``)."""
    layers = layer_labels(n[4:] for n in names if n.startswith("rep:"))
    fixed = {"kd": "distillation (KL)", "rob": "robustness (adv. loss)"}
    return {n: f"{layers[n[4:]]} output" if n.startswith("rep:") else fixed.get(n, n) for n in names}


def _style(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left"), height=height,
                      font=dict(size=FONT_SIZE), margin=dict(l=60, r=20, t=90, b=60),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0.0, xanchor="left"),
                      hovermode="x unified")
    return fig


def legend_below(fig: go.Figure, y: float = -0.2) -> go.Figure:
    """Put the legend under the plot, where a long one cannot run into the title (a legend
    above the plot wraps into a second row that covers it), and make room for it."""
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=y, x=0.0, xanchor="left"),
                      margin=dict(t=100, b=130))
    return fig


def _field(record, name):
    return record[name] if isinstance(record, Mapping) else getattr(record, name)


# --------------------------------------------------------------------------- one run

def dual_entries(history: Iterable[dict]) -> list[dict]:
    """The history entries of the dual solve (those that carry multipliers)."""
    return [h for h in history if h.get("lambdas")]


def constraint_names(history: Iterable[dict]) -> list[str]:
    names: dict[str, None] = {}
    for h in dual_entries(history):
        names.update(dict.fromkeys(h["lambdas"]))
    return list(names)


def multipliers_figure(history: Sequence[dict]) -> go.Figure:
    """Left: each constraint's multiplier λ_j per epoch; right: its mean violation g_j.

    One trace per constraint in each panel, the same colour in both, x-axes linked
    (zooming one zooms the other). g_j <= 0 means the constraint is satisfied. When the
    constraints stay on during fine-tuning, its epochs follow the solve's, after a line
    marking the cut.
    """
    entries = dual_entries(history)
    names = constraint_names(entries)
    labels = constraint_labels(names)
    xs_all = list(range(1, len(entries) + 1))  # epochs in order, across the solve and the fine-tune
    fig = make_subplots(rows=1, cols=2, shared_xaxes="all", horizontal_spacing=0.09)
    for i, name in enumerate(names):
        color = PALETTE[i % len(PALETTE)]
        rows = [(x, h) for x, h in zip(xs_all, entries) if name in h["lambdas"]]
        common = dict(x=[x for x, _ in rows], mode="lines+markers", legendgroup=name, name=labels[name],
                      line=dict(color=color, width=2.5), marker=dict(size=6), meta=name)
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
    return _style(fig, "Lagrange multipliers and constraint violations", height=460)


def layer_sparsity_figure(record) -> go.Figure:
    """One bar per prunable layer: its fraction of zero weights, labelled with its weight count.

    The dashed line is the global sparsity the single cut produced; bars above it
    are layers the cut hit harder than average.
    """
    sparsity, sizes = _field(record, "layer_sparsity"), _field(record, "layer_sizes")
    names = list(sparsity)
    short = layer_labels(names)
    labels = [f"{short[n]}<br>{sizes[n]:,} weights" for n in names]
    kept = [round(sizes[n] * (1 - sparsity[n])) for n in names]
    fig = go.Figure(go.Bar(
        x=labels, y=[sparsity[n] for n in names], marker_color="#8c564b", name="zero fraction",
        text=[f"{sparsity[n]:.1%}" for n in names], textposition="inside", insidetextanchor="end",
        textfont=dict(color="white", size=FONT_SIZE + 2),
        customdata=[[sizes[n], k, n] for n, k in zip(names, kept)],
        hovertemplate="%{customdata[2]}<br>zero: %{y:.2%}<br>kept %{customdata[1]:,} of %{customdata[0]:,}"
                      "<extra></extra>"))
    glob = _field(record, "global_sparsity")
    fig.add_hline(y=glob, line=dict(color=TEACHER_COLOR, dash="dash"))
    fig.update_yaxes(title_text="fraction of weights set to zero", range=[0, 1.02], tickformat=".0%")
    fig.update_layout(showlegend=False, hovermode="closest")
    return _style(fig, f"Per-layer sparsity after one global cut (dashed: global {glob:.1%})")


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
    return _style(fig, f"Robustness at sparsity {cfg['sparsity']:.1%}" + _chosen(fig, epsilon))


def _chosen(fig: go.Figure, epsilon: float | None) -> str:
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
    for i, layer in enumerate(layers):
        fig.add_trace(go.Scatter(x=[h["epoch"] for h in entries],
                                 y=[h["dead_fraction"].get(layer) for h in entries],
                                 name=short[layer], mode="lines+markers",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2.5)), row=1, col=1)
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
    return _style(fig, title, height=520 if accuracy else 420)


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
    return _style(fig, "Accuracy through the stages")


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
    _style(fig, "Clean vs robust accuracy", height=460)
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
    return _style(fig, "Robust accuracy vs sparsity", height=460)


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
                     "seconds": (_field(r, "timings") or {}).get("total")})
    return sorted(rows, key=lambda row: (row["method"], row["target sparsity"]))


def to_html(fig: go.Figure) -> bytes:
    """A self-contained HTML file of ``fig`` (plotly.js embedded, so it opens offline)."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode()


# --------------------------------------------------------------------------- robustness explorer

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

    ``examples`` maps 'dense' and 'pruned' to :func:`deadwood.robustness.evaluation.adversarial_examples`
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
    _style(fig, title, height=520)
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
    _style(fig, f"Adversarial points: {examples['dense'].get('attack', '')} (arrows: clean → attacked)",
           height=480)
    fig.update_layout(hovermode="closest", legend=dict(orientation="v", x=1.02, xanchor="left", y=1.0,
                                                       yanchor="top"))
    return fig


def class_recall_figure(pair: Mapping[str, Mapping], classes: Sequence[str], method: str = "pruned") -> go.Figure:
    """Per-class recall of the dense teacher and the pruned model, clean (solid) and under the
    attack at the evaluation's largest epsilon (hatched): which classes the attack, and the
    pruning, hurt most. ``pair`` is :func:`deadwood.robustness.evaluation.evaluate_pair`'s result."""
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
    _style(fig, f"Per-class recall, clean and under {pair['pruned']['attack']}", height=460)
    # four bars per class: narrow gaps, and the legend under the plot rather than beside it, so the
    # bars get the figure's whole width
    fig.update_layout(barmode="group", bargap=0.12, bargroupgap=0.04, hovermode="x unified")
    return legend_below(fig, y=-0.18)


def security_figure(curves: Mapping[str, Mapping], epsilon: float | None = None, method: str = "pruned") -> go.Figure:
    """Robust accuracy as a function of ε from each sample's minimal adversarial perturbation
    (exact between the steps), for the dense teacher and the pruned model: ``curves`` maps
    'dense' and 'pruned' to :func:`deadwood.robustness.security_curve` results."""
    fig = go.Figure()
    style = {"dense": ("dense teacher", dict(color=TEACHER_COLOR, width=3, dash="dash")),
             "pruned": (f"pruned ({method})", dict(color=method_color(method), width=3))}
    for key, c in curves.items():
        label, line = style.get(key, (key, dict(width=3)))
        fig.add_trace(go.Scatter(x=c["epsilons"], y=c["accuracy"], name=label, mode="lines", line_shape="hv",
                                 line=line))
    first = next(iter(curves.values()), {})
    fig.update_xaxes(title_text=f"perturbation size ε ({'L2' if first.get('norm') == 'l2' else 'L∞'})")
    fig.update_yaxes(title_text="robust accuracy", range=[0, 1.02], tickformat=".0%")
    return _style(fig, f"Security curve ({first.get('attack', '')}: minimal perturbation per sample)"
                  + _chosen(fig, epsilon))
