"""app/charts.py without Streamlit: each builder draws the traces its record implies."""
import re

import pytest

import deadwood
from app import charts, charts_attacks
from deadwood.data.datasets import dataset_info
from deadwood.pruning.masks import prunable
from conftest import tiny


@pytest.fixture(scope="module")
def runs():
    """A tiny Deadwooding run and a magnitude run at the same settings (one shared teacher)."""
    dw = deadwood.run(tiny(method="deadwooding", seed=11)).record
    mag = deadwood.run(tiny(method="magnitude", seed=11)).record
    return dw, mag


def _panel(fig, axis):
    return [t for t in fig.data if t.xaxis == axis]


def test_one_multiplier_and_one_violation_trace_per_constraint(runs):
    dw, _ = runs
    fig = charts.multipliers_figure(dw.history)
    constraints = dw.prune_info["constraints"]  # what the method itself reports, independent of the chart
    # an MLP on digits: 3 prunable layers -> 3 representation constraints, plus kd and rob
    assert len(constraints) == 5
    for axis in ("x", "x2"):
        assert [t.meta for t in _panel(fig, axis)] == constraints
    dual = [h for h in dw.history if h["phase"] == "dual"]
    for trace in _panel(fig, "x"):
        assert list(trace.y) == [h["lambdas"][trace.meta] for h in dual]
        assert list(trace.x) == [h["epoch"] for h in dual]
    for trace in _panel(fig, "x2"):
        assert list(trace.y) == [h["violations"][trace.meta] for h in dual]
    assert fig.layout.xaxis2.matches == "x"  # the two panels zoom together
    # the final multipliers the method reports are the last points drawn
    assert {t.meta: t.y[-1] for t in _panel(fig, "x")} == pytest.approx(dw.prune_info["final_lambdas"])


def test_multiplier_chart_of_a_run_just_started_is_empty_not_an_error():
    assert len(charts.multipliers_figure([]).data) == 0
    growing = [{"phase": "teacher", "epoch": 1, "accuracy": 0.5},
               {"phase": "dual", "epoch": 1, "lambdas": {"kd": 0.0, "rob": 0.2}, "violations": {"kd": -0.1}}]
    fig = charts.multipliers_figure(growing)
    assert len(_panel(fig, "x")) == 2
    assert list(_panel(fig, "x2")[1].y) == [None]  # a missing violation stays a gap


def test_one_bar_per_prunable_layer_with_its_weight_count(runs):
    dw, _ = runs
    fig = charts.layer_sparsity_figure(dw)
    model = deadwood.build_model("mlp", dataset_info("digits"))
    layers = {n: p.numel() for n, p in prunable(model).items()}  # counted from a fresh model
    (bars,) = [t for t in fig.data if t.type == "bar"]
    assert len(bars.x) == len(layers) == 3
    assert [c[2] for c in bars.customdata] == list(layers)  # bars in model order, raw names in the hover
    for label, y, (name, size) in zip(bars.x, bars.y, layers.items()):
        assert f"{size:,} weights" in label
        assert y == dw.layer_sparsity[name]
    # the single cut is global: per-layer sparsity varies, and weighting by size gives the global number
    assert sum(dw.layer_sparsity[n] * s for n, s in layers.items()) / sum(layers.values()) == \
        pytest.approx(dw.global_sparsity)
    assert any(s.y0 == dw.global_sparsity for s in fig.layout.shapes)


def test_robustness_curve_draws_the_run_the_teacher_and_each_baseline(runs):
    dw, mag = runs
    fig = charts.robustness_figure(dw, {"magnitude (cached)": mag}, epsilon=0.1)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"dense teacher", "magnitude (cached)", "deadwooding (this run)"}
    assert list(by_name["deadwooding (this run)"].y) == dw.robustness["accuracy"]
    assert list(by_name["dense teacher"].y) == dw.teacher["robustness"]["accuracy"]
    assert list(by_name["magnitude (cached)"].x) == mag.robustness["epsilons"]
    assert any(s.x0 == 0.1 for s in fig.layout.shapes)  # the chosen epsilon is marked


def test_dead_wood_has_one_line_per_layer_and_training_one_per_stage(runs):
    dw, mag = runs
    fig = charts.dead_wood_figure(dw.history, 0.9)
    assert [t.name for t in fig.data][:-1] == ["layer 1", "layer 2", "layer 3"]
    assert fig.data[-1].name == "held-out accuracy"
    tr = charts.training_figure(dw.history)
    assert [t.name for t in tr.data] == ["teacher", "dual", "finetune"]
    assert sum(len(t.x) for t in tr.data) == sum(1 for h in dw.history if "accuracy" in h)
    assert [t.name for t in charts.training_figure(mag.history).data] == ["teacher", "finetune"]


def test_dead_wood_draws_accuracy_on_its_own_axis(runs):
    dw, _ = runs
    fig = charts.dead_wood_figure(dw.history, 0.9)
    layers, accuracy = fig.data[:-1], fig.data[-1]
    assert {t.yaxis for t in layers} == {"y"} and accuracy.yaxis == "y2"  # two panels, not one shared axis
    assert accuracy.xaxis == "x2" and fig.layout.xaxis.matches == "x2"  # one epoch axis for both
    assert list(fig.layout.yaxis.range) == [0, 1.02]  # the fraction below θ(κ)
    assert fig.layout.yaxis2.domain[1] < fig.layout.yaxis.domain[0]  # accuracy below, not overlapping
    assert any(s.y0 == 0.9 and s.yref == "y" for s in fig.layout.shapes)  # the target κ, in the top panel


def test_the_chosen_epsilon_is_named_in_the_title_not_over_the_points(runs):
    dw, _ = runs
    fig = charts.robustness_figure(dw, {}, epsilon=0.0)
    assert not fig.layout.annotations  # a label at ε = 0 covered the first point
    assert "dotted: ε = 0" in fig.layout.title.text
    assert any(s.x0 == 0.0 and s.line.dash == "dot" for s in fig.layout.shapes)
    assert "ε" not in charts.robustness_figure(dw, {}).layout.title.text


def _rec(method, k, clean, robust, eps=0.1):
    return {"config": {"method": method, "sparsity": k}, "clean_accuracy": clean,
            "robustness": {"epsilons": [0.0, eps], "accuracy": [clean, robust]},
            "global_sparsity": k, "one_shot_accuracy": clean / 2, "timings": {"total": 1.0}}


def test_pareto_front_keeps_exactly_the_undominated_points():
    pts = [(0.9, 0.5), (0.8, 0.6), (0.85, 0.55), (0.7, 0.4), (0.9, 0.3), (0.6, 0.6)]
    assert charts.pareto_front(pts) == [(0.8, 0.6), (0.85, 0.55), (0.9, 0.5)]


def test_pareto_chart_one_trace_per_method_one_marker_shape_per_sparsity():
    recs = [_rec("deadwooding", 0.9, 0.95, 0.7), _rec("deadwooding", 0.99, 0.9, 0.72),
            _rec("magnitude", 0.99, 0.8, 0.3), _rec("magnitude", 0.9, 0.93, 0.5)]
    teacher = {"clean_accuracy": 0.97, "robustness": {"epsilons": [0.0, 0.1], "accuracy": [0.97, 0.75]}}
    fig = charts.pareto_figure(recs, 0.1, teacher)
    methods = {t.name: t for t in fig.data if t.name in ("deadwooding", "magnitude")}
    assert list(methods["magnitude"].x) == [0.93, 0.8]  # sorted by sparsity
    assert list(methods["magnitude"].y) == [0.5, 0.3]
    assert list(methods["deadwooding"].marker.symbol) == list(methods["magnitude"].marker.symbol)
    assert len(set(methods["deadwooding"].marker.symbol)) == 2
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert list(zip(front.x, front.y)) == [(0.9, 0.72), (0.95, 0.7)]  # magnitude is dominated
    star = next(t for t in fig.data if t.name == "dense teacher")
    assert (star.x[0], star.y[0]) == (0.97, 0.75)
    assert {t.name for t in fig.data if t.legendgroup == "sparsity"} == {"κ = 0.9", "κ = 0.99"}


def test_sweep_chart_and_table():
    recs = [_rec("deadwooding", 0.99, 0.9, 0.6), _rec("deadwooding", 0.9, 0.95, 0.7),
            _rec("random", 0.9, 0.5, 0.1)]
    teacher = {"clean_accuracy": 0.97, "robustness": {"epsilons": [0.0, 0.1], "accuracy": [0.97, 0.75]}}
    fig = charts.sparsity_sweep_figure(recs, 0.1, teacher)
    assert [t.name for t in fig.data] == ["deadwooding", "random", "dense teacher"]
    assert list(fig.data[2].y) == [0.75, 0.75]
    assert list(fig.data[0].x) == ["90.0%", "99.0%"] and list(fig.data[0].y) == [0.7, 0.6]
    rows = charts.comparison_rows(recs, 0.1)
    assert [(r["method"], r["target sparsity"]) for r in rows] == [
        ("deadwooding", 0.9), ("deadwooding", 0.99), ("random", 0.9)]
    assert rows[0]["robust accuracy (ε=0.1)"] == 0.7 and rows[0]["accuracy after cut"] == 0.475


def test_html_export_is_self_contained():
    html = charts.to_html(charts.pareto_figure([_rec("random", 0.9, 0.5, 0.1)], 0.1)).decode()
    assert "<html>" in html and "Clean vs robust accuracy" in html
    assert not re.search(r"<script[^>]*\bsrc=", html)  # no script fetched from anywhere: opens offline
    assert len(html) > 1_000_000  # plotly.js itself is inlined


def test_multipliers_kept_on_through_fine_tuning_continue_after_the_cut():
    dw = deadwood.run(tiny(method="deadwooding", seed=11, finetune=deadwood.FinetuneConfig(epochs=2, keep_dual=True)))
    history = dw.record.history
    fig = charts.multipliers_figure(history)
    with_lambdas = [h for h in history if h.get("lambdas")]
    assert [h["phase"] for h in with_lambdas] == ["dual"] * 3 + ["finetune"] * 2
    for trace in _panel(fig, "x"):
        assert list(trace.x) == [1, 2, 3, 4, 5]  # one axis, epochs in order
        assert list(trace.y) == [h["lambdas"][trace.meta] for h in with_lambdas]
    assert [s.x0 for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1] == [3.5, 3.5]  # the cut


# --------------------------------------------------------------------------- robustness explorer

@pytest.fixture(scope="module")
def attacked():
    """A tiny pruned run, its teacher, and foolbox results on the same test samples."""
    from deadwood import robustness

    loaded = deadwood.run(tiny(method="magnitude", seed=12))
    test = deadwood.load_dataset("digits", "test", seed=12).subset(6, 12)
    examples = {name: {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in
                       robustness.adversarial_examples(model, test.x, test.y, "pgd", 0.1, seed=1).items()}
                for name, model in (("dense", loaded.dense()), ("pruned", loaded.model))}
    full = deadwood.load_dataset("digits", "test", seed=12)
    pair = robustness.evaluate_pair(loaded.dense(), loaded.model, full, "pgd", [0.0, 0.1], samples=90, steps=3,
                                    warn=False)
    curves = {name: robustness.security_curve(model, full, attack="deepfool", steps=10, samples=60)
              for name, model in (("dense", loaded.dense()), ("pruned", loaded.model))}
    return examples, pair, curves


def test_adversarial_examples_one_image_per_sample_and_row_titled_with_predictions(attacked):
    examples, _, _ = attacked
    classes = [str(i) for i in range(10)]
    fig = charts_attacks.adversarial_examples_figure(examples, classes)
    assert len(fig.data) == 3 * 6 and all(t.type == "heatmap" for t in fig.data)
    assert [list(map(list, t.z)) for t in fig.data[6:12]] == [list(map(list, x[0])) for x in examples["dense"]["x_adv"]]
    titles = [a.text for a in fig.layout.annotations if a.text and a.text.startswith(("label", "<span"))]
    assert titles[:6] == [f"label {int(y)}" for y in examples["dense"]["y"]]
    for title, r_pred, y in zip(titles[6:12], examples["dense"]["pred_adv"], examples["dense"]["y"]):
        assert f">{int(r_pred)} (" in title
        assert ("#d62728" in title) == (int(r_pred) != int(y))  # red exactly when the model is fooled
    assert titles[12:] and len(titles) == 18


def test_class_recall_bars_match_the_evaluation_and_weigh_up_to_accuracy(attacked):
    _, pair, _ = attacked
    classes = [str(i) for i in range(10)]
    fig = charts_attacks.class_recall_figure(pair, classes, "magnitude")
    assert [t.name for t in fig.data] == ["dense · clean", "dense · attacked (ε=0.1)", "magnitude · clean",
                                         "magnitude · attacked (ε=0.1)"]
    assert all(len(t.x) == 10 for t in fig.data)
    counts = pair["pruned"]["class_counts"]
    attacked_recall = fig.data[3].y
    weighted = sum(r * n for r, n in zip(attacked_recall, counts) if r is not None) / sum(counts)
    assert weighted == pytest.approx(pair["pruned"]["accuracy"][-1])  # recall weighted by class = accuracy
    # four bars per class get the width: the legend lies under the plot, not in a column beside it
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0
    assert fig.layout.bargap <= 0.15


def test_security_curve_is_a_step_line_per_model(attacked):
    from deadwood.robustness.curves import curve_at

    _, _, curves = attacked
    fig = charts_attacks.security_figure(curves, 0.1, "magnitude")
    assert [t.name for t in fig.data] == ["dense teacher", "pruned (magnitude)"]
    assert all(t.line.shape == "hv" for t in fig.data)
    assert not fig.layout.annotations and "dotted: ε = 0.1" in fig.layout.title.text
    pruned = fig.data[1]
    at = max(i for i, e in enumerate(pruned.x) if e <= 0.1)
    assert pruned.y[at] == pytest.approx(curve_at(curves["pruned"]["norms"], [0.1])[0])


def test_two_dimensional_inputs_are_drawn_as_points_with_arrows():
    from deadwood import robustness

    loaded = deadwood.run(tiny(method="magnitude", dataset="moons", seed=13))
    test = deadwood.load_dataset("moons", "test", seed=13).subset(5, 0)
    examples = {name: {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in
                       robustness.adversarial_examples(model, test.x, test.y, "pgd", 0.1).items()}
                for name, model in (("dense", loaded.dense()), ("pruned", loaded.model))}
    fig = charts_attacks.adversarial_examples_figure(examples, ["upper", "lower"])
    fooled = [t for t in fig.data if t.name == "fooled"]
    assert [len(t.x) for t in fooled] == [int(examples[k]["success"].sum()) for k in ("dense", "pruned")]
    assert len([a for a in fig.layout.annotations if a.showarrow]) == 2 * 5


def test_profile_figure_draws_both_models_clean_and_robust_and_marks_the_chosen_sparsity():
    from deadwood.pruning.sparsity_profile import at
    from app.charts_profile import profile_figure

    profile = {"sparsities": [0.0, 0.5, 0.9, 0.99], "attack": "fgsm", "epsilon": 0.1, "samples": 50,
               "student": {"clean": [0.9, 0.9, 0.8, 0.5], "robust": [0.6, 0.6, 0.5, 0.3]},
               "teacher": {"clean": [0.9, 0.85, 0.4, 0.1], "robust": [0.6, 0.5, 0.2, 0.05]}}
    fig = profile_figure(profile, sparsity=0.9)
    traces = {t.name: t for t in fig.data}
    assert list(traces["deadwooding (solved), clean"].y) == profile["student"]["clean"]
    assert list(traces["teacher's weights (magnitude), robust"].y) == profile["teacher"]["robust"]
    assert len(fig.data) == 4 and "FGSM at ε = 0.1" in fig.layout.title.text and "50 test images" in fig.layout.title.text
    xs = list(traces["deadwooding (solved), clean"].x)
    assert xs == sorted(xs)  # κ grows to the right
    (line,) = fig.layout.shapes
    assert line.x0 == pytest.approx(xs[2])  # the chosen κ is marked where its point is
    assert at(profile, 0.91) == {"sparsity": 0.9, "student": {"clean": 0.8, "robust": 0.5},
                                          "teacher": {"clean": 0.4, "robust": 0.2}}
