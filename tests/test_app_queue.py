"""The server's runs seen from its pages (AppTest sessions in one process share its job registry and
queue, as a server's sessions do): the queue, a reloaded page, several visitors at once, widget edges."""
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from apptest import APP, FAST_STAGES, run_to_end, running, widget
from conftest import tiny
from deadwood import Event, RunConfig, with_updates
from deadwood.pipeline import Cache
from deadwood.storage.record import read_record
from app import jobs
from app.jobs import sharing

pytestmark = pytest.mark.filterwarnings("ignore::deadwood.robustness.RobustnessWarning")


def open_app(seed, **widgets):
    at = AppTest.from_file(APP, default_timeout=120).run()
    for key, value in {**FAST_STAGES, "seed": seed, **widgets}.items():
        widget(at, key).set_value(value)
    return at.run()


def expected_config(seed, **changes) -> RunConfig:
    """The configuration the widgets describe, built independently of the app's own code."""
    return with_updates(RunConfig(seed=seed), **{
        "teacher.epochs": 2, "deadwooding.epochs": 2, "hydra.epochs": 1, "finetune.epochs": 1,
        "evaluation.samples": 60, "evaluation.steps": 2, **changes})


def queued(at) -> list[str]:
    return [i.value for i in at.info if i.value.startswith("Queued behind")]


@pytest.fixture
def blocker():
    """A job holding the server's one place (DEADWOOD_MAX_RUNS unset: 1) until the test lets it go."""
    release = threading.Event()

    def runner(config, on_event, cache_dir=None):
        on_event(Event("start", "teacher", 0, 1))
        release.wait(120)

    hold = jobs.watch([tiny(seed=301)], runner=runner)
    deadline = time.time() + 10
    while hold.view().state != "running":
        assert time.time() < deadline
        time.sleep(0.01)
    yield release
    release.set()
    hold.stop()
    hold.job.wait(10)


def test_a_queued_run_shows_its_place_and_a_reloaded_page_finds_it(fresh_cache, blocker):
    at = open_app(seed=302)
    at.button(key="run").click().run()
    assert not at.exception and running(at)
    assert queued(at) and queued(at)[0].startswith("Queued behind 1 run:")
    assert "DEADWOOD_MAX_RUNS" in queued(at)[0]
    token = at.query_params["live"]
    hold = at.session_state["job:live"]
    assert hold.token == token and hold.view().state == "queued"

    # another visitor presses Run on the same settings while it is queued: it attaches, one place in the queue
    other = open_app(seed=302)
    other.button(key="run").click().run()
    assert other.session_state["job:live"].job is hold.job and queued(other)
    assert jobs.QUEUE.counts() == (1, 1)

    # the first page reloaded: a new session whose address names the job; no Run pressed
    reloaded = AppTest.from_file(APP, default_timeout=120)
    reloaded.query_params["live"] = token
    reloaded.run()
    assert not reloaded.exception and running(reloaded) and queued(reloaded)
    assert reloaded.session_state["job:live"] is hold  # the same hold: a reload is not one more follower

    blocker.set()  # the place frees: the queued job computes, and the reloaded page follows it live
    deadline = time.time() + 300
    while not any("epoch" in p.proto.text for p in reloaded.get("progress")):
        if hold.view().state == "done":  # the tiny run can end between two polls of the page
            break
        assert running(reloaded) and time.time() < deadline
        time.sleep(0.2)
        reloaded.run()
    assert not queued(reloaded) and hold.view().state in ("running", "done")
    run_to_end(reloaded, press=False)
    run_to_end(other, press=False)
    record = read_record(Cache().run_dir(expected_config(302)))
    assert other.metric[0].value == f"{record.global_sparsity:.2%}"
    # the reloaded page's widgets are the defaults again: it shows the run it followed, and says so
    assert reloaded.metric[0].value == f"{record.global_sparsity:.2%}"
    assert any("Showing the last run" in i.value for i in reloaded.info)
    assert hold.job.view().cached == [] and jobs.QUEUE.counts() == (0, 0)


def test_stop_on_a_queued_run_takes_it_out_of_the_queue(fresh_cache, blocker):
    at = open_app(seed=303)
    at.button(key="run").click().run()
    assert queued(at) and jobs.QUEUE.counts() == (1, 1)
    at.button(key="stop").click().run()
    deadline = time.time() + 10
    while running(at):
        assert time.time() < deadline
        time.sleep(0.05)
        at.run()
    assert not at.exception and jobs.QUEUE.counts() == (1, 0)
    assert any(w.value.startswith("Stopped") for w in at.warning)
    assert not Cache().has_run(expected_config(303)) and not at.button(key="run").disabled


def test_four_pages_on_two_settings_compute_each_once(fresh_cache, monkeypatch):
    """The issue's load check: 4 sessions press Run on 2 configurations at once."""
    made = []

    class Counted(jobs.Job):
        def __init__(self, configs, **kwargs):
            made.append(tuple(configs))
            super().__init__(configs, **kwargs)

    monkeypatch.setattr(sharing, "Job", Counted)
    kappas = (0.8, 0.9, 0.8, 0.9)
    pages = [open_app(seed=311, sparsity=k) for k in kappas]
    t0 = time.perf_counter()
    for at in pages:  # all pressed before any run ends
        at.button(key="run").click().run()
    assert all(running(at) for at in pages)
    assert sum(bool(queued(at)) for at in pages) == 2  # one place (DEADWOOD_MAX_RUNS=1): one setting waits
    for at in pages:
        run_to_end(at, press=False)
    seconds = time.perf_counter() - t0
    print(f"\n4 pages, 2 settings: {len(made)} jobs, {seconds:.1f} s until every page showed its results")
    assert sorted(c[0].sparsity for c in made) == [0.8, 0.9]  # one job per configuration
    followed = {id(at.session_state["job:live"].job): at.session_state["job:live"].job for at in pages}
    assert len(followed) == 2
    for job in followed.values():
        view = job.view()
        assert view.state == "done" and view.cached == [] and view.finished == [job.configs[0].key()]
    for at, k in zip(pages, kappas):
        record = read_record(Cache().run_dir(expected_config(311, sparsity=k)))
        assert record.config["sparsity"] == k
        assert not at.exception and at.metric[0].value == f"{record.global_sparsity:.2%}"
        assert not any("Showing the last run" in i.value for i in at.info)


@pytest.mark.parametrize("sparsity, epsilon", [(0.5, 0.0), (0.995, 0.3)])
def test_sparsity_and_epsilon_at_their_bounds_run_to_results(sparsity, epsilon):
    at = open_app(seed=321, sparsity=sparsity, epsilon=epsilon, method="magnitude")
    assert not at.exception and not at.error and not at.button(key="run").disabled
    run_to_end(at)
    record = read_record(Cache().run_dir(expected_config(321, sparsity=sparsity, epsilon=epsilon,
                                                         method="magnitude")))
    assert not at.exception and not at.error
    assert at.metric[0].value == f"{record.global_sparsity:.2%}"
    assert record.global_sparsity == pytest.approx(sparsity, abs=0.01)
    assert any(m.label == f"Robust accuracy (ε = {epsilon:g})" for m in at.metric)


@pytest.mark.parametrize("where", ["a folder that does not exist", "a file, not a folder"])
def test_a_data_folder_that_is_not_one_says_so_and_run_waits(where, tmp_path):
    path = tmp_path / "nowhere" / "data"
    if where.startswith("a file"):
        path = tmp_path / "notes.txt"
        path.write_text("not a folder")
    at = open_app(seed=322, dataset="mnist")
    widget(at, "data_dir").set_value(str(path)).run()
    assert not at.exception and at.button(key="run").disabled
    assert any(f"not found in {path}" in e.value and "missing" in e.value for e in at.error)


def test_a_queued_page_names_the_run_ahead_its_data_model_stage_and_progress(fresh_cache):
    """What a queued page waits for: the run computing now, with its method, data, model and stage,
    updated while it waits."""
    release, epoch = threading.Event(), threading.Event()

    def runner(config, on_event, cache_dir=None):
        on_event(Event("start", "teacher", 0, 8))
        on_event(Event("epoch", "teacher", 2, 8, {"epoch": 2, "accuracy": 0.5}))
        epoch.wait(120)
        on_event(Event("epoch", "teacher", 6, 8, {"epoch": 6, "accuracy": 0.5}))
        release.wait(120)

    ahead = jobs.watch([tiny(seed=331, method="hydra", sparsity=0.8)], runner=runner)
    try:
        deadline = time.time() + 10
        while ahead.view().stages["teacher"].done != 2:
            assert time.time() < deadline
            time.sleep(0.01)
        at = open_app(seed=332)
        at.button(key="run").click().run()
        assert not at.exception and queued(at)

        def waiting_for() -> list[str]:
            return [c.value for c in at.caption if c.value.startswith("Computing now")]

        assert len(waiting_for()) == 1
        text = waiting_for()[0]
        assert "**hydra**" in text and "κ = 0.8" in text and "digits/mlp" in text
        assert "Stage 0 · dense teacher: epoch 2 of 8 (25%" in text
        epoch.set()  # the run ahead moves on: the queued page shows it at its next poll
        deadline = time.time() + 10
        while "epoch 6 of 8 (75%" not in waiting_for()[0]:
            assert time.time() < deadline
            time.sleep(0.05)
            at.run()
    finally:
        release.set()
        epoch.set()
        ahead.stop()
        ahead.job.wait(10)
    run_to_end(at, press=False)
    assert not waiting_for() and not queued(at)
