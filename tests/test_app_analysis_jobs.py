"""The lenses and the explorer compute as analysis jobs (app.jobs.analysis), headless (streamlit AppTest):
while one computes the page shows its progress and Stop with its choices disabled, Stop stops it, and
a second visit with the same inputs is served from the stored result without starting a job.

To catch the job while it computes, whatever the machine's speed, a stand-in job holds the server's
one place in the run queue: the analysis waits behind it, as it would behind another page's run."""
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from apptest import APP, FAST_STAGES, figures, run_to_end, running, widget
from app import runs as app_runs
from app.jobs import QUEUE, Job
from deadwood import RunConfig, run, with_updates
from deadwood.pipeline import Cache

pytestmark = pytest.mark.filterwarnings("ignore::deadwood.robustness.RobustnessWarning")


def fast(seed: int, **changes) -> RunConfig:
    """The configuration the app's widgets describe with FAST_STAGES, built independently of the app."""
    return with_updates(RunConfig(seed=seed), **{
        "teacher.epochs": 2, "deadwooding.epochs": 2, "hydra.epochs": 1, "finetune.epochs": 1,
        "evaluation.samples": 60, "evaluation.steps": 2, **changes})


def open_page(page, seed, first=(), then=()):
    """``page`` with the FAST stages and ``seed``; ``first`` widgets, a rerun, then the ``then`` widgets."""
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page(page).run()
    for key, value in [*dict(FAST_STAGES, seed=seed).items(), *first]:
        widget(at, key).set_value(value)
    at.run()
    for key, value in then:
        widget(at, key).set_value(value)
    return at.run()


@pytest.fixture
def held_queue(monkeypatch):
    """The run queue's one place taken until the test releases it (the fixture's value: its Event)."""
    monkeypatch.setenv("DEADWOOD_MAX_RUNS", "1")
    release = threading.Event()
    holder = Job([RunConfig()], runner=lambda config, on_event, cache_dir: release.wait(300))
    deadline = time.time() + 30
    while QUEUE.counts()[0] < 1:
        assert time.time() < deadline, "the stand-in job never took its place"
        time.sleep(0.05)
    yield release
    release.set()
    holder.wait(30)


@pytest.fixture
def starts(monkeypatch):
    """How many jobs the pages start (app.runs.start calls)."""
    calls = []
    real = app_runs.start
    monkeypatch.setattr(app_runs, "start", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def stop_and_wait(at):
    at.button(key="stop").click().run()
    deadline = time.time() + 120
    while running(at):
        assert time.time() < deadline, "the job did not stop"
        time.sleep(0.3)
        at.run()
    assert not at.exception and any(w.value.startswith("Stopped") for w in at.warning)


def assert_progress_while_queued(at, **choices):
    """The page's first refresh after the job started: progress, Stop, and ``choices`` disabled and kept."""
    assert running(at) and not at.exception
    at.run()  # in a browser, the progress fragment's first refresh reruns the page
    assert running(at) and not at.exception
    assert all(widget(at, key).disabled and widget(at, key).value == value for key, value in choices.items())
    assert any("Queued behind 1 run" in i.value for i in at.info)
    texts = [p.proto.text for p in at.get("progress")]
    assert texts and all(t.endswith(": waiting") for t in texts), texts
    assert at.button(key="run").disabled
    assert not figures(at)  # nothing from before is drawn as if it were the result


def test_a_lens_computes_as_a_job_with_progress_and_stop_then_comes_from_the_cache(fresh_cache, held_queue, starts):
    config = fast(17, dataset="moons", method="magnitude", sparsity=0.85)
    run(config)  # the run the lens reads: the job is the lens's own computation
    choices = dict(first=[("lens", "Linear regions")], then=[("regions_method", "magnitude"),
                                                             ("regions_sparsity", 0.85)])
    at = open_page("views/inside.py", 17, **choices)
    assert_progress_while_queued(at, lens="Linear regions", regions_method="magnitude", regions_sparsity=0.85)
    assert any("Linear regions of the dense teacher: waiting" == p.proto.text for p in at.get("progress"))
    stop_and_wait(at)
    stored = fresh_cache / "analyses"
    assert not list(stored.glob("regions-*.npz")) and not figures(at)

    held_queue.set()  # the queue is free again: Run computes the lens
    run_to_end(at)
    assert "fig_regions" in figures(at) and "fig_bound" in figures(at)
    [result] = stored.glob("regions-*.npz")
    stamp, started = result.stat().st_mtime_ns, len(starts)

    again = open_page("views/inside.py", 17, **choices)  # a second visit: served from the stored result
    assert not running(again) and not again.exception
    assert "fig_regions" in figures(again)
    assert figures(again)["fig_regions"]["layout"]["annotations"] == figures(at)["fig_regions"]["layout"]["annotations"]
    assert len(starts) == started and result.stat().st_mtime_ns == stamp


def test_the_explorer_attacks_as_a_job_with_progress_and_stop_then_come_from_the_cache(held_queue, starts):
    config = fast(3, sparsity=0.9)
    run(config)
    choices = dict(first=[("sparsity", 0.9), ("samples", 30)])
    existing = set((Cache().root / "analyses").glob("explore-*.npz"))
    at = open_page("views/explorer.py", 3, **choices)
    assert_progress_while_queued(at, attack="pgd", attack_epsilon=0.1, samples=30)
    assert any(p.proto.text.startswith("Adversarial examples") for p in at.get("progress"))
    stop_and_wait(at)
    assert set((Cache().root / "analyses").glob("explore-*.npz")) == existing

    held_queue.set()
    run_to_end(at)
    assert set(figures(at)) == {"fig_adversarial-examples", "fig_class-recall", "fig_security-curve"}
    [result] = set((Cache().root / "analyses").glob("explore-*.npz")) - existing
    stamp, started = result.stat().st_mtime_ns, len(starts)

    again = open_page("views/explorer.py", 3, **choices)
    assert not running(again) and not again.exception
    assert set(figures(again)) == set(figures(at))
    assert [m.value for m in again.metric] == [m.value for m in at.metric]
    assert len(starts) == started and result.stat().st_mtime_ns == stamp
