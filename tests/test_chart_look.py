"""The charts' shared look on many layers (app/chart_look.py, no Streamlit): legends outside the plot,
colours that do not repeat within a chart, the multipliers of 52 layers as a band; and the app's
one percentage formatter and Markdown escaping (app/formatting.py)."""
import math
import re

import pytest

from app import chart_look, charts, charts_deploy, charts_inside, charts_profile, formatting

LAYERS = [f"features.{i}.weight" for i in range(52)]  # as many prunable layers as mobilenet_v3_small


def _history(layers=LAYERS, epochs=6):
    """A dual solve over ``layers``: λ of layer i rises at a rate of its own, kd and rob too."""
    out = []
    for e in range(1, epochs + 1):
        lam = {f"rep:{n}": 0.01 * i * e for i, n in enumerate(layers)}
        lam.update(kd=0.05 * e, rob=0.3 * e)
        out.append({"phase": "dual", "epoch": e, "lambdas": lam, "accuracy": 0.5 + 0.05 * e,
                    "violations": {k: 0.1 - 0.02 * e for k in lam},
                    "dead_fraction": {n: min(1.0, 0.01 * i + 0.1 * e) for i, n in enumerate(layers)}})
    return out


def _record(layers=LAYERS):
    return {"layer_sparsity": {n: 0.5 + 0.009 * i for i, n in enumerate(layers)},
            "layer_sizes": {n: 1000 + i for i, n in enumerate(layers)}, "global_sparsity": 0.7}


def _line_colors(fig):
    """The colour of every drawn line or marker set of the figure, one per trace that has one."""
    out = []
    for t in fig.data:
        if t.type != "scatter" or t.meta in ("scale",) or (t.line and t.line.width == 0):
            continue
        out.append((t.xaxis or "x", (t.line.color if t.line else None) or (t.marker.color if t.marker else None)))
    return out


def test_multipliers_of_52_layers_are_a_band_with_the_top_few_and_their_own_constraint_colours():
    fig = charts.multipliers_figure(_history())
    for axis in ("x", "x2"):
        panel = [t for t in fig.data if (t.xaxis or "x") == axis]
        layers = [t for t in panel if str(t.meta).startswith("rep:")]
        assert 1 <= len(layers) <= charts.HIGHLIGHTED
        # the highlighted ones are the largest final λ: the last layers here
        assert {t.meta for t in layers} == {f"rep:{n}" for n in LAYERS[-charts.HIGHLIGHTED:]}
        band = [t for t in panel if str(t.meta).startswith("band:")]
        assert [t.fill for t in band if t.fill] == ["tonexty"]
        assert [t.meta for t in panel if t.meta in ("kd", "rob")] == ["kd", "rob"]
    mins = [t for t in fig.data if t.meta == "band:min" and (t.xaxis or "x") == "x"][0]
    maxs = [t for t in fig.data if t.meta == "band:max" and (t.xaxis or "x") == "x"][0]
    assert list(maxs.y) == pytest.approx([0.01 * 51 * e for e in range(1, 7)]) and list(mins.y) == [0.0] * 6
    colors = [c for axis, c in _line_colors(fig) if axis == "x"]
    assert len(colors) == len(set(colors))  # no colour twice in one panel
    kd, rob = (next(t.line.color for t in fig.data if t.meta == m) for m in ("kd", "rob"))
    assert {kd, rob} == set(chart_look.CONSTRAINT_COLORS.values())


def test_a_few_layers_keep_one_trace_each_in_colours_no_constraint_takes():
    fig = charts.multipliers_figure(_history(LAYERS[:3]))
    assert [t.meta for t in fig.data if (t.xaxis or "x") == "x"] == [f"rep:{n}" for n in LAYERS[:3]] + ["kd", "rob"]
    colors = [c for axis, c in _line_colors(fig) if axis == "x"]
    assert len(set(colors)) == 5


@pytest.mark.parametrize("n", [3, 8, 9, 21, 52, 120])
def test_layer_colours_never_repeat_nor_take_a_constraints(n):
    colors = chart_look.layer_colors(n)
    assert len(colors) == n == len(set(colors))
    assert not set(colors) & set(chart_look.CONSTRAINT_COLORS.values())
    assert len(set(chart_look.distinct_colors(n))) == n


def test_dead_wood_of_52_layers_one_colour_each_and_a_colour_bar_not_a_legend():
    fig = charts.dead_wood_figure(_history(), 0.9)
    layer_traces = [t for t in fig.data if t.meta in LAYERS]
    assert len(layer_traces) == 52 and len({t.line.color for t in layer_traces}) == 52
    assert not any(t.showlegend for t in layer_traces)
    assert any(t.meta == "scale" and t.marker.showscale for t in fig.data)


def test_layer_sparsity_of_52_layers_lies_on_its_side_one_row_each():
    fig = charts.layer_sparsity_figure(_record())
    (bars,) = fig.data
    assert bars.orientation == "h" and len(bars.y) == 52 and fig.layout.height >= 22 * 52
    assert bars.y[0].startswith("layer 1 (1,000)")
    assert charts.layer_sparsity_figure(_record(LAYERS[:3])).data[0].orientation in (None, "v")


def _outside(legend) -> bool:
    """Whether a legend sits outside the plot area: under it (anchored at its top, below 0) or right of it."""
    below = legend.orientation == "h" and legend.yanchor == "top" and legend.y < 0
    beside = legend.xanchor == "left" and legend.x > 1
    return below or beside


def _figures():
    h = _history()
    rec = {**_record(), "config": {"method": "deadwooding", "sparsity": 0.9, "epsilon": 0.1},
           "robustness": {"epsilons": [0.0, 0.1], "accuracy": [0.9, 0.5], "attack": "pgd", "steps": 3},
           "teacher": {"robustness": {"epsilons": [0.0, 0.1], "accuracy": [0.95, 0.6]}}, "clean_accuracy": 0.9}
    others = {f"{m} (cached)": {**rec, "config": {**rec["config"], "method": m}}
              for m in ("magnitude", "random", "hydra", "gmp", "harp", "undecayed")}
    profile = {"sparsities": [0.5, 0.9, 0.99], "attack": "fgsm", "epsilon": 0.1, "samples": 50,
               "student": {"clean": [0.9, 0.8, 0.3], "robust": [0.5, 0.4, 0.1]},
               "teacher": {"clean": [0.9, 0.7, 0.2], "robust": [0.5, 0.3, 0.1]}}
    return {"multipliers": charts.multipliers_figure(h), "dead-wood": charts.dead_wood_figure(h, 0.9),
            "training": charts.training_figure(h), "robustness": charts.robustness_figure(rec, others, 0.1),
            "pareto": charts.pareto_figure([rec], 0.1), "sweep": charts.sparsity_sweep_figure([rec], 0.1),
            "profile": charts_profile.profile_figure(profile, 0.9),
            "similarity": charts_inside.similarity_figure({"layers": LAYERS[:4], "sparsity": 0.9, "similarity": {
                name: {n: 0.5 for n in LAYERS[:4]} for name in ("deadwooding", "magnitude", *charts_inside.CONTRASTS)}}),
            "bound": charts_inside.bound_figure([{"sparsity": 0.9, "log10_uniform": 1, "log10_guided": 2}])}


@pytest.mark.parametrize("name", list(_figures()))
def test_every_legend_lies_outside_the_plot(name):
    fig = _figures()[name]
    if fig.layout.showlegend is not False and chart_look.legend_entries(fig):
        assert _outside(fig.layout.legend), fig.layout.legend


def test_many_legend_entries_go_beside_a_few_below():
    fig = _figures()["robustness"]  # the run, the teacher and six other methods
    assert fig.layout.legend.orientation == "v" and fig.layout.legend.x > 1
    assert _figures()["sweep"].layout.legend.orientation == "h"


def test_a_titles_details_go_on_a_second_line_whole():
    fig = charts.robustness_figure({"config": {"method": "random", "sparsity": 0.9}, "robustness": {},
                                    "teacher": {}}, epsilon=0.1)
    head, details = fig.layout.title.text.split("<br>")
    assert head == "Robustness at sparsity 90.0%" and "(dotted: ε = 0.1)" in details


def test_the_crossover_values_are_in_the_legend_not_on_the_lines():
    dep = {"crossover": {"batch_sizes": [4], "shapes": [
        {"label": f"Linear {i}", "sparsities": [0.5, 0.9], "speedup": {"4": [0.5, 1.5]}, "crossover": {"4": 0.7 + i / 1000},
         "batch": {"4": 4}, "run_sparsity": {}} for i in range(12)]}}
    fig = charts_deploy.crossover_figure(dep)
    assert not fig.layout.annotations
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len({t.line.color for t in lines}) == 12 and "crossover 0.700" in lines[0].name


# --------------------------------------------------------------------------- formatting

@pytest.mark.parametrize("fraction, text", [(0.94999, "95.0%"), (0.98, "98.0%"), (0.97999, "98.0%"),
                                            (0.9494, "94.9%"), (1.0, "100.0%"), (0.0, "0.0%"), (None, "n/a")])
def test_percentages_are_rounded_not_truncated(fraction, text):
    assert formatting.percent_text(fraction) == text
    if fraction is not None:
        # what a table column with a 0.001 step shows: Streamlit truncates to the step's precision
        value = formatting.percent_value(fraction)
        shown = math.trunc(value * 1000 + 2 ** -52 * value * 1000 * 10) / 1000
        assert f"{shown:.1%}" == text


def test_points_are_signed_and_rounded():
    assert formatting.points_text(0.95 - 0.9) == "+5.0 pts" and formatting.points_text(-0.00049) == "-0.0 pts"


def test_engine_messages_keep_every_character_in_markdown():
    message = "DIR/train/<class>/* and DIR/<class>/*: $5 for my_file_0.png, __init__ `x` [a](b) a|b ~c~"
    escaped = formatting.plain(message)
    # every markup character is escaped, and removing the escapes gives the message back
    assert re.sub(r"\\(.)", r"\1", escaped) == message
    for ch in "*<>$`[]|~":
        assert ch not in re.sub(r"\\.", "", escaped)
    assert "my_file_0.png" in escaped  # an underscore inside a word stays as it is: paths read unchanged
    assert "\\_\\_init\\_\\_" in escaped


def test_what_the_cut_buys_table_has_no_none_cells_and_no_note_column():
    ok = {"agreement": {"same": True, "max_abs_diff": 1e-6}}
    dep = {"batch_sizes": [1], "forms": [
        {"form": "dense", "label": "dense", "available": True, "latency_s": {"1": 0.001}, "speedup": {"1": 1.0},
         "macs": 12345, "note": "", **ok},
        {"form": "bcr", "label": "BCR-compacted", "available": False, "latency_s": {}, "speedup": {}, "macs": None,
         "note": "not built: the run was cut 'unstructured', not 'bcr'", "agreement": {}}]}
    table = charts_deploy.form_table(dep)
    assert len(table) == 2 and all(v is not None and v != "None" for row in table for v in row.values())
    assert "note" not in table[0] and table[1]["batch 1 (ms)"] == "not built"
    assert table[0]["speed-up b1"] == "1.00x" and table[0]["MACs per sample (count)"] == "12,345"
    assert charts_deploy.form_notes(dep) == ["BCR-compacted: not built: the run was cut 'unstructured', not 'bcr'"]


def test_compares_seconds_leave_out_the_teacher_and_a_solve_other_runs_reuse():
    timings = {"data": 0.5, "teacher": 10.0, "prune": 3.0, "finetune": 0.6, "eval": 0.3, "total": 14.4}
    first = {"config": {"method": "deadwooding", "sparsity": 0.9}, "timings": timings,
             "teacher": {"cached": False}, "prune_info": {"solve_cached": False}}
    later = {**first, "timings": {**timings, "teacher": 0.1, "prune": 0.05, "total": 1.55},
             "teacher": {"cached": True}, "prune_info": {"solve_cached": True}}
    assert charts.shared_seconds(first) == {"teacher": 10.5, "solve": 3.0}
    assert charts.own_seconds(first) == pytest.approx(0.9) and charts.own_seconds(later) == pytest.approx(0.95)
    assert charts.shared_seconds(later) == {}
    assert [r["seconds"] for r in charts.comparison_rows([{**first, "global_sparsity": 0.9, "one_shot_accuracy": 0.5,
                                                           "clean_accuracy": 0.9, "robustness": {}}], 0.1)] == \
        [pytest.approx(0.9)]
