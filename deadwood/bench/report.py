"""The benchmark's report: means over seeds, ``bench.md``, and the Pareto chart.

One Pareto computation (:func:`pareto_front`) serves the benchmark, the app's Compare page
and the notebooks.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Optional

from ..storage.files import atomic_write_bytes

METRICS = ("one_shot_accuracy", "clean_accuracy", "robust_accuracy", "time_s")
# beside PGD (the record's own): robust accuracy under AutoAttack, PGD on AutoAttack's samples, the teacher's
ATTACK_METRICS = ("autoattack_accuracy", "autoattack_pgd_accuracy", "teacher_autoattack_accuracy")

def _stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values)}


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation (n - 1) over seeds of every metric, per (method,
    sparsity), in the order the rows first name them; ``cost_vs_magnitude`` is the ratio of
    mean ``time_s`` to magnitude's at the same sparsity (None without a magnitude row)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["sparsity"]), []).append(r)
    out = []
    for (method, sparsity), rs in groups.items():
        entry = {"method": method, "sparsity": sparsity, "seeds": sorted(r["seed"] for r in rs)}
        entry.update({m: _stats([r[m] for r in rs]) for m in METRICS})
        if any(m in r for r in rs for m in ATTACK_METRICS):
            entry.update({m: _stats([r.get(m) for r in rs]) for m in ATTACK_METRICS})
        out.append(entry)
    magnitude = {e["sparsity"]: e["time_s"]["mean"] for e in out if e["method"] == "magnitude"}
    for e in out:
        base = magnitude.get(e["sparsity"])
        e["cost_vs_magnitude"] = e["time_s"]["mean"] / base if base else None
    return out


def grid_seconds(rows: list[dict]) -> dict[str, float]:
    """Per method: ``time_s`` summed over its sparsities, averaged over seeds (what one seed's
    whole grid costs; a method that reuses a solve across sparsities pays for it once)."""
    per_seed: dict[str, dict[int, float]] = {}
    for r in rows:
        per_seed.setdefault(r["method"], {}).setdefault(r["seed"], 0.0)
        per_seed[r["method"]][r["seed"]] += r["time_s"]
    return {m: statistics.fmean(v.values()) for m, v in per_seed.items()}


def _fmt(s: dict, digits: int = 3) -> str:
    if s["mean"] is None:
        return "n/a"
    if s["std"] is None:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def markdown(result: dict) -> str:
    """``bench.md``: the setting, the table of means ± standard deviations, the throughput."""
    g = result["grid"]
    lines = [f"# Benchmark: {g['dataset']} / {g['model']}, epsilon {g['epsilon']}", ""]
    if result.get("command"):
        lines += ["    " + result["command"], ""]
    if result.get("note"):
        lines += [f"**{result['note']}**", ""]
    if not result["complete"]:
        lines += [f"**Incomplete: {len(result['rows'])} of {g['points']} runs finished.**", ""]
    for f in result.get("failures") or []:
        lines.append(f"- failed: {f['kind']} of {f['method']} at sparsity {f['sparsity']:g}, seed {f['seed']}: "
                     f"{f['error']}")
    if result.get("failures"):
        lines.append("")
    ex = result.get("executor")
    if ex:
        where = f"the Ray cluster at {ex['address']}" if ex["address"] else f"{ex['workers']} local Ray workers"
        lines += [f"Computed on {where} ({ex['threads_per_worker']} torch thread each): Deadwooding's Stage 1 "
                  "solves ran as tasks of their own, so no row's time includes a solve.", ""]
    summary = summarize(result["rows"])
    if summary:
        ev = result["evaluation"]
        seeds = " ".join(map(str, g["seeds"]))
        lines += budget_lines(result) + [
            f"Seeds {seeds} (mean ± sample standard deviation over them). Robust accuracy: foolbox L-inf PGD, "
            f"{ev['steps']} steps, at epsilon {g['epsilon']}, on {ev['samples'] or 'all'} test images. "
            "One-shot: clean accuracy right after the cut, before fine-tuning. Time: the run's own prune + "
            "fine-tune + evaluation seconds as recorded when it was computed (the shared teacher left out; "
            "Deadwooding's Stage 1 solve is counted in the one run per seed that solved, the other sparsities "
            "reuse it); "
            f"{_load_note(result)}.", "",
            f"| method | sparsity | one-shot | clean | robust@{g['epsilon']:g} | time (s) | time / magnitude |",
            "|---|---:|---:|---:|---:|---:|---:|"]
        for e in summary:
            ratio = "n/a" if e["cost_vs_magnitude"] is None else f"{e['cost_vs_magnitude']:.2f}x"
            lines.append(f"| {e['method']} | {e['sparsity']:g} | {_fmt(e['one_shot_accuracy'])} | "
                         f"{_fmt(e['clean_accuracy'])} | {_fmt(e['robust_accuracy'])} | "
                         f"{_fmt(e['time_s'], 2)} | {ratio} |")
        totals = grid_seconds(result["rows"])
        if "magnitude" in totals:
            lines += ["", "Whole grid, seconds summed over the sparsities (mean over seeds), against magnitude's: "
                      + ", ".join(f"{m} {t:.1f} s ({t / totals['magnitude']:.2f}x)" for m, t in totals.items()) + "."]
        if any("autoattack_accuracy" in e for e in summary):
            lines += [""] + autoattack_lines(result, summary)
        flagged = [r for r in result["rows"] if r.get("warnings")]
        if flagged:
            lines += ["", f"Robustness sanity checks failed in {len(flagged)} run(s) (their robust accuracy may be "
                          "overestimated): " + "; ".join(f"{r['run']}: {r['warnings'][0]}" for r in flagged[:5])
                      + (" ..." if len(flagged) > 5 else "")]
        teachers = result.get("teachers") or {}
        if teachers:
            tl = list(teachers.values())
            lines += ["", f"Dense teachers (one per seed, shared by every method): clean "
                          f"{_fmt(_stats([t['clean_accuracy'] for t in tl]))}, robust@{g['epsilon']:g} "
                          f"{_fmt(_stats([t['robust_accuracy'] for t in tl]))}, trained in "
                          f"{_fmt(_stats([t['seconds'] for t in tl]), 1)} s each."]
    t = result.get("throughput")
    lines += ["", "## Throughput", ""]
    if isinstance(t, dict) and "images_per_second" in t:
        from .throughput import throughput_lines

        lines += throughput_lines(t)
    else:
        lines.append(t if isinstance(t, str) else "not measured (--no-throughput)")
    if result.get("deployment"):
        from .deployment import deployment_lines

        lines += ["", "## Deployment: what the cut buys", ""] + deployment_lines(result["deployment"])
    if result.get("figure"):
        lines += ["", f"Pareto chart: {result['figure']}"]
    return "\n".join(lines) + "\n"


PROTOCOLS = {
    "matched": "every method trains as many epochs after the teacher as Deadwooding's solve plus its fine-tune, "
               "at the same batch size and fine-tune learning rate; a method's own stage spends its part, the "
               "shared fine-tune the rest",
    "finetune": "every method fine-tunes the same epochs; a method's own stage trains on top, so the totals differ",
}


def budget_lines(result: dict) -> list[str]:
    """Which budget protocol the table used (deadwood.methods.budget), and each method's epochs by stage,
    read from the rows."""
    protocol = result["grid"].get("budget")
    epochs: dict[str, dict] = {}
    for r in result["rows"]:
        te = r.get("train_epochs") or {}
        protocol = protocol or te.get("protocol")
        if te.get("by_stage"):
            epochs.setdefault(r["method"], te)
    if protocol is None:
        return []
    each = "; ".join(f"{m} {te['total']} ({' + '.join(f'{s} {n}' for s, n in te['by_stage'].items())})"
                     for m, te in epochs.items())
    return [f"Training budget: **{protocol}** (`--budget {protocol}`): {PROTOCOLS.get(protocol, '')}. "
            f"Epochs after the teacher, by stage: {each or 'none recorded'}.", ""]


def _ranking(summary: list[dict], sparsity: float, metric: str) -> list[tuple[str, float]]:
    es = [e for e in summary if e["sparsity"] == sparsity and (e.get(metric) or {}).get("mean") is not None]
    return sorted(((e["method"], e[metric]["mean"]) for e in es), key=lambda p: -p[1])


def autoattack_lines(result: dict, summary: list[dict]) -> list[str]:
    """The PGD and AutoAttack columns side by side, and, per sparsity, the ordering of the methods
    and Deadwooding's margin over the best other method under each attack, said in words."""
    g, ev = result["grid"], result["evaluation"]
    n = ev.get("attack_samples")
    pkg = (ev.get("packages") or {}).get("autoattack") or {}
    eps = g["epsilon"]
    lines = [f"### Robust accuracy at epsilon {eps:g}: PGD and AutoAttack", "",
             f"PGD-{ev['steps']}: foolbox, as above, on {ev['samples'] or 'all'} test images. AutoAttack: the standard "
             f"version (APGD-CE, APGD-T, FAB-T, Square; {pkg.get('name', '?')} {pkg.get('version', '?')}), on "
             f"{n} test images chosen by the seed (the same for every method and the teacher of that seed), "
             f"with PGD-10 on those same images beside it; gap = PGD-10 minus AutoAttack on the same images.", "",
             f"| method | sparsity | clean | PGD-{ev['steps']} ({ev['samples'] or 'all'}) | PGD-10 ({n}) | "
             f"AutoAttack ({n}) | gap |", "|---|---:|---:|---:|---:|---:|---:|"]
    for e in summary:
        gap = None
        if e["autoattack_accuracy"]["mean"] is not None and e["autoattack_pgd_accuracy"]["mean"] is not None:
            gap = e["autoattack_pgd_accuracy"]["mean"] - e["autoattack_accuracy"]["mean"]
        lines.append(f"| {e['method']} | {e['sparsity']:g} | {_fmt(e['clean_accuracy'])} | {_fmt(e['robust_accuracy'])} "
                     f"| {_fmt(e['autoattack_pgd_accuracy'])} | {_fmt(e['autoattack_accuracy'])} | "
                     f"{'n/a' if gap is None else f'{gap:+.3f}'} |")
    teachers = [t for t in (result.get("teachers") or {}).values() if t.get("autoattack_accuracy") is not None]
    if teachers:
        lines += ["", f"Dense teachers under AutoAttack ({n} images): "
                      f"{_fmt(_stats([t['autoattack_accuracy'] for t in teachers]))}."]
    lines += ["", f"Ordering of the methods (mean robust accuracy, best first) and Deadwooding's margin over the "
                  f"best other method, PGD-10 and AutoAttack on the same {n} images:", ""]
    for s in sorted({e["sparsity"] for e in summary}):
        pgd_rank = _ranking(summary, s, "autoattack_pgd_accuracy")
        aa_rank = _ranking(summary, s, "autoattack_accuracy")
        if len(aa_rank) < 2:
            continue
        same = [m for m, _ in pgd_rank] == [m for m, _ in aa_rank]
        line = (f"- sparsity {s:g}: PGD {' > '.join(m for m, _ in pgd_rank)}; AutoAttack "
                f"{' > '.join(m for m, _ in aa_rank)} ({'same order' if same else 'the order changes'})")
        for name, rank in (("PGD", pgd_rank), ("AutoAttack", aa_rank)):
            d = dict(rank)
            if "deadwooding" in d and len(d) > 1:
                best_other = max(v for m, v in d.items() if m != "deadwooding")
                line += f"; Deadwooding's margin under {name} {d['deadwooding'] - best_other:+.3f}"
        lines.append(line)
    return lines


def _load_note(result: dict) -> str:
    env = result.get("environment", {})
    return (f"device {env.get('device', '?')}, {env.get('threads', '?')} torch thread(s), "
            f"load average {env.get('load_average', '?')} at the start")


# --------------------------------------------------------------------------- the chart

_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "triangle-down", "pentagon",
            "hexagon")


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats in both coordinates (higher is better in both), sorted by x."""
    front = [p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(set(front))


def pareto_figure(summary: list[dict], epsilon: float, title: str = ""):
    """Plotly figure: mean clean (x) against mean robust accuracy (y) per (method, sparsity), one
    colour per method (the registry's: :func:`deadwood.methods.method_colours`), one marker symbol
    per sparsity, error bars of one standard deviation over seeds, a dotted line joining each
    method's sparsities in order, and the Pareto front of all points as a dashed grey line."""
    import plotly.graph_objects as go

    from ..methods import method_colours

    fig = go.Figure()
    methods = list(dict.fromkeys(e["method"] for e in summary))
    levels = sorted({e["sparsity"] for e in summary})
    colours = method_colours(methods)
    symbols = {s: _SYMBOLS[i % len(_SYMBOLS)] for i, s in enumerate(levels)}
    usable = [e for e in summary if e["clean_accuracy"]["mean"] is not None
              and e["robust_accuracy"]["mean"] is not None]
    for m in methods:
        es = sorted((e for e in usable if e["method"] == m), key=lambda e: e["sparsity"])
        fig.add_trace(go.Scatter(
            x=[e["clean_accuracy"]["mean"] for e in es], y=[e["robust_accuracy"]["mean"] for e in es],
            error_x={"type": "data", "array": [e["clean_accuracy"]["std"] or 0 for e in es], "thickness": 1},
            error_y={"type": "data", "array": [e["robust_accuracy"]["std"] or 0 for e in es], "thickness": 1},
            mode="lines+markers", name=m, legendgroup="methods", legendgrouptitle_text="method",
            line={"color": colours[m], "width": 1, "dash": "dot"},
            marker={"color": colours[m], "symbol": [symbols[e["sparsity"]] for e in es], "size": 11,
                    "line": {"width": 1, "color": "white"}},
            text=[f"{m} at sparsity {e['sparsity']:g}" for e in es],
            hovertemplate="%{text}<br>clean %{x:.3f}<br>robust %{y:.3f}<extra></extra>"))
    for s in levels:  # legend entries for the symbols
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{s:g}", legendgroup="sparsity",
                                 legendgrouptitle_text="sparsity",
                                 marker={"symbol": symbols[s], "color": "grey", "size": 10}))
    front = pareto_front([(e["clean_accuracy"]["mean"], e["robust_accuracy"]["mean"]) for e in usable])
    if len(front) > 1:
        fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines",
                                 name="Pareto front", line={"dash": "dash", "color": "lightgrey"},
                                 hoverinfo="skip"))
    fig.update_layout(title=title, xaxis_title="clean accuracy", yaxis_title=f"robust accuracy (PGD, ε = {epsilon:g})",
                      template="plotly_white", width=900, height=600, legend={"groupclick": "toggleitem"})
    return fig


def write_figure(fig, out: Path) -> tuple[Optional[str], Optional[str]]:
    """Write ``pareto.html`` (self-contained, works offline) and try ``pareto.png`` through kaleido;
    return (png file name or None, a note on why there is no PNG or None)."""
    atomic_write_bytes(out / "pareto.html", fig.to_html(include_plotlyjs=True, full_html=True).encode())
    try:
        png = fig.to_image(format="png", scale=1)
    except Exception as e:  # kaleido missing, no Chromium, or Chromium failing: the HTML is enough
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        return None, f"no PNG: the static renderer (kaleido + Chromium) is unavailable ({first})"
    atomic_write_bytes(out / "pareto.png", png)
    return "pareto.png", None
