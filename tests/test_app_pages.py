"""Headless page tests: drive the widgets by key, press Run, check the charts (streamlit AppTest).

Runs are made small through the app's own "Advanced" widgets; the engine's cache
sits in the test session's temporary folder (conftest).
"""
import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from apptest import APP, FAST_STAGES, figures, run_to_end, running, widget
from deadwood import RunConfig, with_updates
from deadwood.pipeline import Cache
from deadwood.storage.record import read_record

# The runs here use 2-step PGD for speed; its sanity-check warnings are expected, and shown on the page.
pytestmark = pytest.mark.filterwarnings("ignore::deadwood.robustness.RobustnessWarning")

FAST = dict(FAST_STAGES, seed=3)


def open_app(page=None, **widgets):
    at = AppTest.from_file(APP, default_timeout=120).run()
    if page:
        at.switch_page(page).run()
    for key, value in {**FAST, **widgets}.items():
        widget(at, key).set_value(value)
    return at.run()


def expected_config(**changes) -> RunConfig:
    """The configuration the widgets describe, built independently of the app's own code."""
    return with_updates(RunConfig(seed=FAST["seed"]), **{
        "teacher.epochs": 2, "deadwooding.epochs": 2, "hydra.epochs": 1, "finetune.epochs": 1,
        "evaluation.samples": 60, "evaluation.steps": 2, **changes})


def test_live_page_runs_and_draws_every_chart(fresh_cache):  # it asserts a fresh run: no other test may have cached it
    at = open_app(sparsity=0.9)
    assert not at.exception and at.title[0].value == "Live pruning"
    at.button(key="run").click().run()
    assert running(at)  # progress fragment: one bar per stage and a Stop control
    assert any("Stage 0" in p.proto.text for p in at.get("progress"))
    assert at.button(key="run").disabled  # no second run while one goes
    run_to_end(at, press=False)
    figs = figures(at)
    assert set(figs) >= {"fig_multipliers", "fig_layer-sparsity", "fig_robustness", "fig_dead-wood",
                         "fig_training"}
    record = read_record(Cache().run_dir(expected_config(sparsity=0.9)))  # stored under the widgets' config
    constraints = record.prune_info["constraints"]
    assert len([t for t in figs["fig_multipliers"]["data"] if t.get("xaxis", "x") == "x"]) == len(constraints)
    bars = [t for t in figs["fig_layer-sparsity"]["data"] if t["type"] == "bar"]
    assert len(bars[0]["x"]) == len(record.layer_sparsity)
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["Global sparsity", "Clean accuracy", "Robust accuracy (ε = 0.1)",
                          "Accuracy right after the cut"]
    assert at.metric[0].value == f"{record.global_sparsity:.2%}"
    assert {b.key for b in at.get("download_button")} >= {"dl_record", "dl_model", "html_multipliers"}
    assert any(e.proto.label == "About the method" for e in at.get("expander"))

    assert "fig_sparsity-profile" in figs  # the one-shot profile of the run's own solve

    # another κ of the same solve: the one-shot numbers at once, labelled before fine-tuning, no run
    widget(at, "sparsity").set_value(0.8).run()
    assert not running(at) and any("Before fine-tuning" in h.value for h in at.subheader)
    figs = figures(at)
    assert "fig_sparsity-profile" in figs and "fig_layer-sparsity" not in figs  # nothing fine-tuned shown
    profile = record.sparsity_profile
    k = min(profile["sparsities"], key=lambda s: abs(s - 0.8))
    assert at.metric[0].value == f"{profile['student']['clean'][profile['sparsities'].index(k)]:.1%}"
    # a value without a solve or a run says so and keeps the last run
    widget(at, "method").set_value("magnitude").run()
    assert any("have not been run yet" in i.value for i in at.info) and "fig_layer-sparsity" in figures(at)
    # a computed value redraws at once from the cache
    widget(at, "method").set_value("deadwooding")
    widget(at, "sparsity").set_value(0.9).run()
    assert not at.info and "fig_multipliers" in figures(at)


def test_widget_changes_during_a_run_cannot_reach_it():
    at = open_app(sparsity=0.85, dual_epochs=20, method="deadwooding")
    at.button(key="run").click().run()
    widget(at, "sparsity").set_value(0.6)
    widget(at, "dual_update").set_value("nupi")
    at.run()
    assert running(at) and not at.exception  # the change reran the page while the job went on
    run_to_end(at, press=False)
    started = expected_config(sparsity=0.85, **{"deadwooding.epochs": 20})
    record = read_record(Cache().run_dir(started))
    assert record.config["sparsity"] == 0.85 and record.config["deadwooding"]["dual_update"] == "dual-ascent"
    assert record.global_sparsity == pytest.approx(0.85, abs=0.01)
    assert not Cache().has_run(expected_config(sparsity=0.6, **{"deadwooding.epochs": 20,
                                                                "deadwooding.dual_update": "nupi"}))
    assert any("have not been run yet" in i.value for i in at.info)  # the page shows the run it started


def test_stop_ends_a_run_cleanly():
    at = open_app(sparsity=0.7, dual_epochs=400)
    at.button(key="run").click().run()
    deadline = time.time() + 300
    while not any("dual solve: epoch" in p.proto.text for p in at.get("progress")):
        assert time.time() < deadline
        time.sleep(0.3)
        at.run()
    at.button(key="stop").click().run()
    while running(at):
        assert time.time() < deadline
        time.sleep(0.3)
        at.run()
    assert not at.exception
    assert any(w.value.startswith("Stopped") for w in at.warning)
    assert not Cache().has_run(expected_config(sparsity=0.7, **{"deadwooding.epochs": 400}))
    assert not at.button(key="run").disabled


def test_an_impossible_combination_is_refused_with_its_reason():
    at = open_app(model="vgg")
    assert not at.exception
    assert any("does not fit dataset 'digits'" in e.value and "32x32" in e.value for e in at.error)
    assert at.button(key="run").disabled


def test_a_dataset_without_files_says_where_to_put_them(tmp_path):
    at = open_app(dataset="mnist")
    assert not at.exception and at.button(key="run").disabled
    assert any("Data folder" in e.value and "MNIST/raw/train-images-idx3-ubyte" in e.value for e in at.error)
    widget(at, "data_dir").set_value(str(tmp_path)).run()
    assert any(str(tmp_path) in e.value and "missing" in e.value for e in at.error)
    # what to do in the app, not a command-line flag
    assert any("Copy its files into that folder" in e.value for e in at.error)
    assert not any("--download" in e.value or "--data-dir" in e.value for e in at.error)


def test_garbage_files_under_mnists_names_give_a_message_not_a_traceback(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"not an idx file at all, just text " * 40)
    at = open_app(dataset="mnist")
    widget(at, "data_dir").set_value(str(tmp_path)).run()
    assert not at.exception  # was torchvision's AssertionError, full traceback, and no Run button
    messages = [e.value for e in at.error]
    assert any("t10k-images-idx3-ubyte" in m or str(tmp_path) in m for m in messages), messages
    assert at.button(key="run").disabled  # still there, saying why it cannot run
    assert "Traceback" not in " ".join(messages)


def test_a_damaged_cached_record_shows_a_message_and_recomputes(cache_dir):
    default = RunConfig()
    folder = Cache().run_dir(default)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "record.json").write_text("{ this is not json")  # the default page's own entry
    at = AppTest.from_file(APP, default_timeout=120).run()  # every visitor's first view
    assert not at.exception
    assert any("damaged" in e.value and "record.json" in e.value for e in at.error)
    assert not any("Press **Run**" in i.value for i in at.info)  # the error says what to do
    assert not at.button(key="run").disabled
    at.button(key="recompute").click().run()
    run_to_end(at, press=False)  # the damaged entry is replaced by a fresh run of the same configuration
    assert not at.error and "fig_multipliers" in figures(at)
    assert read_record(folder).config["sparsity"] == default.sparsity


def _keys(node) -> list:
    keys = []
    for child in getattr(node, "children", {}).values():
        if getattr(child, "key", None):
            keys.append(child.key)
        keys += _keys(child)
    return keys


@pytest.mark.parametrize("page", [None, "views/compare.py", "views/explorer.py", "views/inside.py"])
def test_run_sits_above_every_input_so_a_shrinking_one_cannot_move_it(page):
    at = AppTest.from_file(APP, default_timeout=120).run()
    if page:
        at.switch_page(page).run()
    keys = _keys(at.sidebar)
    assert keys[0] == "run" and {"dataset", "epsilon"} <= set(keys[1:])
    if page == "views/compare.py":  # removing a sparsity tag reruns the page; Run stays first
        widget(at, "grid").unselect(0.9).run()
        assert _keys(at.sidebar)[0] == "run" and not at.exception


def test_compare_page_runs_the_grid_and_repeats_instantly():
    grid = dict(methods=["magnitude", "random"], grid=[0.9, 0.95])
    at = open_app("views/compare.py", **grid)
    assert at.title[0].value == "Compare methods" and not at.exception
    assert any("0 of 4 runs are cached" in i.value for i in at.info)
    run_to_end(at)
    figs = figures(at)
    assert {t["name"] for t in figs["fig_pareto"]["data"]} >= {"magnitude", "random", "dense teacher"}
    assert [t["name"] for t in figs["fig_robust-vs-sparsity"]["data"]] == ["magnitude", "random", "dense teacher"]
    assert len(at.dataframe[0].value) == 4
    formats = {name: c.get("type_config", {}) for name, c in json.loads(at.dataframe[0].proto.columns).items()}
    percent = [n for n in at.dataframe[0].value.columns if n not in ("method", "seconds")]
    assert percent and all(formats[n] == {"type": "number", "format": "percent", "step": 0.001} for n in percent)
    assert formats["seconds"]["format"] == "%.1f"  # one decimal everywhere: 80.0% beside 85.8%

    fresh = open_app("views/compare.py", **grid)  # a new session: everything comes from the cache
    assert not fresh.info and not running(fresh)
    assert set(figures(fresh)) == {"fig_pareto", "fig_robust-vs-sparsity"}


def test_compare_page_budget_toggle_reruns_what_it_changes_and_names_the_protocol():
    grid = dict(methods=["magnitude", "gmp"], grid=[0.9], seed=13)
    at = open_app("views/compare.py", **grid)
    assert widget(at, "budget").value == "matched" and widget(at, "budget").options == ["matched", "finetune"]
    run_to_end(at)
    # Advanced: dual solve 2 epochs, fine-tune 1; gmp's own epochs default to the solve's
    assert any("Training budget: **matched**" in c.value and "magnitude 3 (finetune 3)" in c.value
               and "gmp 3 (gmp 2 + finetune 1)" in c.value for c in at.caption)

    widget(at, "budget").set_value("finetune").run()
    # gmp trains alike under both protocols (its cached run answers); magnitude fine-tunes 1 epoch, not 3
    assert any("1 of 2 runs are cached" in i.value for i in at.info)
    run_to_end(at)
    assert any("Training budget: **finetune**" in c.value and "magnitude 1 (finetune 1)" in c.value
               for c in at.caption)
    record = read_record(Cache().run_dir(expected_config(method="magnitude", sparsity=0.9, seed=13,
                                                         budget="finetune")))
    assert record.train_epochs["by_stage"] == {"finetune": 1} and record.config["budget"] == "finetune"


def test_explorer_prunes_when_needed_then_attacks_both_models():
    at = open_app("views/explorer.py", sparsity=0.9, samples=40)
    assert at.title[0].value == "Robustness explorer" and not at.exception
    run_to_end(at)
    figs = figures(at)
    assert set(figs) == {"fig_adversarial-examples", "fig_class-recall", "fig_security-curve"}
    images = [t for t in figs["fig_adversarial-examples"]["data"] if t["type"] == "heatmap"]
    assert len(images) == 3 * 8  # clean, against the dense teacher, against the pruned model
    assert [t["name"] for t in figs["fig_security-curve"]["data"]] == ["dense teacher", "pruned (deadwooding)"]
    assert [m.label for m in at.metric][1] == "Dense: pgd at ε = 0.1"
    # the 40-sample accuracies differ from the run's own evaluation: the page says so, not only a tooltip
    record = read_record(Cache().run_dir(expected_config(sparsity=0.9)))
    assert any("40 test samples attacked here" in c.value and f"{record.clean_accuracy:.1%}" in c.value
               for c in at.caption)
    inside_columns = {key for col in at.columns for key in _keys(col)}
    assert "fig_class-recall" not in inside_columns  # ten classes times four bars get the full width

    widget(at, "attack").set_value("deepfool-l2").run()  # an L2 attack brings its own epsilon slider
    assert not at.exception and widget(at, "attack_epsilon_l2").value == 1.0
    run_to_end(at, press=False)  # its attacks compute as a job
    assert "L2" in figures(at)["fig_security-curve"]["layout"]["xaxis"]["title"]["text"]
