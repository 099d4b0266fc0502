"""The Live page draws a run as soon as it is published, while its sparsity profile's bar goes on
(streamlit AppTest; the run computes in the app's worker process)."""
import time

import pytest
from streamlit.testing.v1 import AppTest

import deadwood.pipeline as pipeline
from apptest import APP, FAST_STAGES, figures, run_to_end, running, widget
from deadwood import RunConfig, run, with_updates
from deadwood.storage.cache import Cache
from deadwood.storage.files import entry_lock

pytestmark = pytest.mark.filterwarnings("ignore::deadwood.robustness.RobustnessWarning")

FAST = dict(FAST_STAGES, seed=58)
CONFIG = with_updates(RunConfig(seed=58), sparsity=0.9, **{
    "teacher.epochs": 2, "deadwooding.epochs": 2, "hydra.epochs": 1, "finetune.epochs": 1,
    "evaluation.samples": 60, "evaluation.steps": 2})  # what the widgets below describe


def test_the_live_page_draws_a_published_run_while_its_profile_goes_on(fresh_cache, monkeypatch):
    # the run published, its profile stage broken off (as a crash inside it leaves it)
    def broken(*args, **kwargs):
        raise RuntimeError("profile broke")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="profile broke"):
        patch.setattr(pipeline, "sparsity_profile", broken)
        run(CONFIG)
    cache = Cache()
    assert cache.record(CONFIG)[0].sparsity_profile is None

    at = AppTest.from_file(APP, default_timeout=120).run()
    for key, value in {**FAST, "sparsity": 0.9}.items():
        widget(at, key).set_value(value)
    at.run()
    with entry_lock(cache.run_dir(CONFIG)):  # the worker's profile waits for this lock: held, it cannot end
        at.button(key="run").click().run()
        deadline = time.time() + 300
        while "fig_layer-sparsity" not in figures(at):
            assert time.time() < deadline and running(at), "the published run was not drawn while the job ran"
            time.sleep(0.3)
            at.run()
        assert running(at) and "fig_sparsity-profile" not in figures(at)  # the run's charts, no profile yet
        bars = [p.proto.text for p in at.get("progress")]
        assert any(t.startswith("Sparsity profile") for t in bars), bars
    run_to_end(at, press=False)
    assert "fig_sparsity-profile" in figures(at) and cache.record(CONFIG)[0].sparsity_profile
