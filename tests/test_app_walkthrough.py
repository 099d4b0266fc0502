"""Headless tests of the Walkthrough page, links that carry the view, the κ slider's stops and the
κ redraw of a stored solve on Live pruning (streamlit AppTest; small runs through the app's own
"Advanced" widgets, the engine's cache in the test session's temporary folder)."""
import base64
import time

import numpy as np

import pytest
from streamlit.testing.v1 import AppTest

from apptest import APP, FAST_STAGES, figures, run_to_end, running, widget
from deadwood import RunConfig, with_updates

from deadwood.pipeline import Cache
from deadwood.pruning.masks import global_cut

pytestmark = pytest.mark.filterwarnings("ignore::deadwood.robustness.checks.RobustnessWarning")

FAST = dict(FAST_STAGES, seed=41)
WALK = "views/walkthrough.py"
STEP_FIGURES = {1: {"fig_walk-teacher"}, 2: {"fig_walk-constraints"}, 3: {"fig_walk-replay", "fig_walk-replay-magnitudes", "fig_walk-replay-masks"},
                4: {"fig_walk-magnitudes", "fig_walk-layer-sparsity"}, 5: {"fig_walk-training"},
                6: {"fig_walk-robustness", "fig_walk-profile"}}


def open_app(page=None, query=None, **widgets):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    if page:
        at.switch_page(page).run()
    for key, value in {**FAST, **widgets}.items():
        widget(at, key).set_value(value)
    return at.run()


def _array(z) -> np.ndarray:
    """A figure's array as Plotly's JSON holds it: a list, or typed bytes ({"dtype", "bdata", "shape"})."""
    if isinstance(z, dict):
        shape = [int(n) for n in str(z.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.asarray(z, dtype=float)


def expected_config(**changes) -> RunConfig:
    return with_updates(RunConfig(seed=FAST["seed"]), **{
        "teacher.epochs": 2, "deadwooding.epochs": 2, "hydra.epochs": 1, "finetune.epochs": 1,
        "evaluation.samples": 60, "evaluation.steps": 2, **changes})


@pytest.fixture(scope="module")
def stored():
    """One default-κ Deadwooding run of the fast settings, stored in the session's cache."""
    at = open_app()
    run_to_end(at)
    return expected_config()


def test_the_walkthrough_offers_one_run_on_an_empty_cache_and_then_draws(fresh_cache):
    at = open_app(WALK, seed=43)
    assert not at.exception and at.title[0].value.startswith("Walkthrough")
    assert any("Nothing is stored" in i.value for i in at.info)
    assert at.subheader[0].value == "Step 1 of 6: The dense teacher" and not figures(at)
    at.button(key="walk_run").click().run()
    assert running(at) and any("Stage 0" in p.proto.text for p in at.get("progress"))  # Live's own progress
    run_to_end(at, press=False)
    assert not any("Nothing is stored" in i.value for i in at.info)
    assert set(figures(at)) == STEP_FIGURES[1]


def test_each_walkthrough_step_draws_its_figure_from_the_stored_run(stored):
    at = open_app(WALK)
    assert at.button(key="back").disabled
    for step in range(1, 7):
        assert not at.exception, at.exception
        assert at.subheader[0].value.startswith(f"Step {step} of 6")
        assert set(figures(at)) >= STEP_FIGURES[step], (step, set(figures(at)))
        assert at.session_state["step"] == str(step)
        if step < 6:
            at.button(key="next").click().run()
    assert at.button(key="next").disabled
    at.button(key="back").click().run()
    assert at.subheader[0].value.startswith("Step 5 of 6")


def test_the_solve_replay_moves_with_the_epoch_slider(stored):
    at = open_app(WALK, query={"step": "3"})
    solved = Cache().solves.summary(stored)
    epochs = len([h for h in solved["history"] if h.get("lambdas")])
    replay = figures(at)["fig_walk-replay"]
    assert f"epoch {epochs} of {epochs}" in replay["layout"]["title"]["text"]
    widget(at, "epoch").set_value(1).run()
    replay = figures(at)["fig_walk-replay"]
    assert "epoch 1 of" in replay["layout"]["title"]["text"]
    assert all(len(t["x"]) == 1 for t in replay["data"])  # only the first epoch drawn
    # the masks and magnitudes are those of the first epoch's weights (tests/test_app_replay.py: the frames)
    masks = figures(at)["fig_walk-replay-masks"]
    assert "after solve epoch 1" in masks["layout"]["title"]["text"]


def test_a_link_opens_its_step_and_a_bad_step_says_so():
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(WALK)
    at.query_params["step"] = "3"
    at.run()
    assert at.subheader[0].value.startswith("Step 3 of 6") and not at.warning
    bad = AppTest.from_file(APP, default_timeout=120)
    bad.switch_page(WALK)
    bad.query_params["step"] = "9"
    bad.run()
    assert not bad.exception and bad.subheader[0].value.startswith("Step 1 of 6")
    assert any("step='9'" in w.value for w in bad.warning)


def test_a_link_carries_the_settings_into_the_widgets_and_the_config():
    at = open_app(query={"dataset": "digits", "model": "mlp", "method": "magnitude", "sparsity": "0.99",
                         "epsilon": "0.2"})
    assert not at.exception and not at.warning
    assert widget(at, "method").value == "magnitude"
    assert widget(at, "sparsity").value == 0.99 and widget(at, "epsilon").value == pytest.approx(0.2)
    # the same settings as the sidebar builds them: the run would be stored under the link's config
    assert any("have not been run yet" in i.value or "Press **Run**" in i.value for i in at.info)


@pytest.mark.parametrize("query, named", [({"method": "nope"}, "method='nope'"),
                                          ({"sparsity": "1.5"}, "sparsity='1.5'"),
                                          ({"epsilon": "abc"}, "epsilon='abc'"),
                                          ({"dataset": "imagenet"}, "dataset='imagenet'")])
def test_a_bad_link_value_shows_a_message_and_the_defaults(query, named):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    at.run()
    assert not at.exception
    assert any(named in w.value and "default" in w.value for w in at.warning)
    default = RunConfig()
    assert widget(at, "method").value == default.method and widget(at, "sparsity").value == default.sparsity
    assert widget(at, "epsilon").value == pytest.approx(default.epsilon)


def test_the_kappa_slider_stops_are_exact_values_and_spread_by_what_is_kept():
    from app.widgets import SPARSITY_CHOICES, kappa_label

    at = AppTest.from_file(APP, default_timeout=120).run()
    slider = widget(at, "sparsity")
    assert tuple(slider.options) == tuple(kappa_label(k) for k in SPARSITY_CHOICES)
    for k in (0.5, 0.985, 0.995):
        slider.set_value(k).run()
        assert widget(at, "sparsity").value == k  # the float itself, not 0.9850000001
        assert float(kappa_label(k)) == k  # the address holds the exact value
    assert RunConfig().sparsity in SPARSITY_CHOICES
    assert sum(0.9 <= k <= 0.995 for k in SPARSITY_CHOICES) >= len(SPARSITY_CHOICES) / 2  # the cliff gets room
    assert list(SPARSITY_CHOICES) == sorted(set(SPARSITY_CHOICES))


def test_the_two_epsilons_are_named_apart():
    from app.widgets import ATTACK_EPSILON_HELP, EPSILON_HELP

    at = open_app()
    run_eps = widget(at, "epsilon")
    assert "Run budget" in run_eps.label and "different teacher" in run_eps.help
    assert "attack" in ATTACK_EPSILON_HELP and "run budget" in ATTACK_EPSILON_HELP and EPSILON_HELP != ATTACK_EPSILON_HELP
    explorer = open_app("views/explorer.py")
    assert widget(explorer, "attack_epsilon").label.startswith("Explorer attack ε")


def test_kappa_on_a_stored_solve_redraws_everything_that_depends_only_on_the_solve(stored):
    at = open_app()
    shown = {}
    for k in (0.8, 0.9):
        t0 = time.perf_counter()
        widget(at, "sparsity").set_value(k).run()
        seconds = time.perf_counter() - t0
        assert not at.exception and not running(at)
        figs = figures(at)
        assert {"fig_sparsity-profile", "fig_solve-multipliers", "fig_cut-layer-sparsity", "fig_cut-dead-wood",
                "fig_cut-masks"} <= set(figs)
        assert any("Before fine-tuning" in h.value for h in at.subheader)
        state, _ = Cache().solves.load(stored)
        names = [t for t in figs["fig_cut-layer-sparsity"]["data"] if t["type"] == "bar"][0]
        mask, _ = global_cut({n: state[n].abs() for n in state if n.endswith("weight")}, k, 8)
        assert names["y"] == pytest.approx(list(mask.layer_sparsity().values()))  # the cut itself, at this κ
        assert f"global {k:.1%}" in figs["fig_cut-layer-sparsity"]["layout"]["title"]["text"]
        assert f"κ = {k:.1%}" in figs["fig_cut-dead-wood"]["layout"]["title"]["text"]
        heat = [t for t in figs["fig_cut-masks"]["data"] if t["type"] == "heatmap"]
        assert len(heat) == len(mask)
        kept = sum(_array(t["z"]).sum() for t in heat)
        assert kept == sum(int(m.sum()) for m in mask.values())  # small layers: every weight drawn
        shown[k] = (names["y"], figs["fig_solve-multipliers"]["data"])
        print(f"\nκ = {k}: redraw {seconds:.2f} s")
    assert shown[0.8][0] != shown[0.9][0]
    assert shown[0.8][1] == shown[0.9][1]  # the multipliers do not depend on κ
