"""app/jobs/: background runs the pages follow, without Streamlit."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from deadwood.stages import planned as planned_stages
from app.jobs import Job, RunQueue, find, watch
from deadwood import ConfigError, DeadwoodingConfig, Event
from deadwood.pipeline import Cache
from deadwood.storage.record import read_record
from conftest import tiny


def test_a_real_run_reports_every_stage_and_lands_in_the_cache():
    config = tiny(method="deadwooding", seed=21)
    view = Job([config]).wait(timeout=600)
    assert view.state == "done" and view.error is None
    assert view.finished == [config.key()] and view.cached == []
    assert list(view.stages) == ["teacher", "teacher-eval", "dual", "cut", "finetune", "eval", "profile"]
    assert all(p.state == "done" and p.fraction == 1.0 for p in view.stages.values())
    assert view.stages["dual"].total == config.deadwooding.epochs
    # the live multiplier chart reads these: one entry per dual epoch, with every constraint
    dual = [h for h in view.history if h["phase"] == "dual"]
    assert [h["epoch"] for h in dual] == [1, 2, 3]
    assert Cache().has_run(config)
    record = read_record(Cache().run_dir(config))
    assert list(dual[-1]["lambdas"]) == record.prune_info["constraints"]
    assert dual[-1]["lambdas"] == record.prune_info["final_lambdas"]
    again = Job([config]).wait(timeout=60)  # a repeat is a lookup
    assert again.cached == [config.key()] and all(p.state == "cached" for p in again.stages.values())


def _parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def test_a_default_job_computes_in_a_worker_process_that_stop_ends():
    config = tiny(deadwooding=DeadwoodingConfig(epochs=500), seed=23)  # far too long to finish by itself
    job = Job([config])
    deadline = time.time() + 300
    while not any(h["phase"] == "dual" for h in job.view().history):
        assert job.view().running and time.time() < deadline, job.view().error
        time.sleep(0.05)
    view = job.view()
    # the engine runs in a child of this process, so page refreshes here never hold it up (GIL)
    assert view.pid != os.getpid() and _parent_of(view.pid) == os.getpid()
    job.stop()
    view = job.wait(120)
    assert view.state == "stopped" and view.finished == [] and view.error is None
    assert not Cache().has_run(config)
    assert view.stages["dual"].done < 500
    # the teacher, trained before the stop, stays cached; the next job reuses the same worker
    again = Job([tiny(deadwooding=DeadwoodingConfig(epochs=1), seed=23)]).wait(600)
    assert again.state == "done" and again.stages["teacher"].state == "cached"
    assert again.pid == view.pid


def test_errors_in_the_worker_come_back_as_the_jobs_message(tmp_path):
    view = Job([tiny(dataset="mnist", data_dir=str(tmp_path))]).wait(120)
    assert view.state == "failed" and view.pid != os.getpid()
    assert view.error.startswith(f"dataset 'mnist' not found in {tmp_path}") and view.details is None


def test_a_worker_that_dies_fails_the_job_with_a_message_and_is_replaced():
    config = tiny(deadwooding=DeadwoodingConfig(epochs=500), seed=23)
    job = Job([config])
    deadline = time.time() + 300
    while not any(h["phase"] == "dual" for h in job.view().history):
        assert job.view().running and time.time() < deadline, job.view().error
        time.sleep(0.05)
    dead = job.view().pid
    os.kill(dead, signal.SIGKILL)
    view = job.wait(60)
    assert view.state == "failed" and "worker process ended unexpectedly" in view.error
    after = Job([tiny(seed=23)]).wait(600)
    assert after.state == "done" and after.pid not in (None, dead)  # a new worker takes over


def test_pages_running_the_same_settings_share_one_job_until_the_last_lets_go(tmp_path, monkeypatch):
    monkeypatch.setenv("DEADWOOD_MAX_RUNS", "2")  # `elsewhere` computes beside the first job, not after it
    configs = [tiny(deadwooding=DeadwoodingConfig(epochs=500), seed=23)]
    first, second = watch(configs), watch(configs)
    assert first.job is second.job  # one computation, followed by both pages
    elsewhere = watch([tiny(dataset="mnist", data_dir=str(tmp_path))])
    assert elsewhere.job is not first.job and elsewhere.job.wait(120).state == "failed"
    deadline = time.time() + 300
    while not any(h["phase"] == "dual" for h in second.view().history):
        assert second.view().running and time.time() < deadline, second.view().error
        time.sleep(0.05)
    first.stop()  # one page lets go: the other still follows a running job
    assert first.view().state == "stopped" and second.view().running
    time.sleep(0.5)
    assert second.job.view().running
    second.stop()  # the last one: the job stops
    assert second.job.wait(120).state == "stopped" and second.view().state == "stopped"
    third = watch(configs)  # a stopped job is not joined again
    assert third.job is not first.job
    third.stop()
    assert third.job.wait(120).state == "stopped"


class Scripted:
    """A stand-in for deadwood.run that emits a fixed event sequence, pausing where told."""

    def __init__(self, pause_at=None, fail=None):
        self.pause_at, self.fail = pause_at, fail
        self.reached, self.release = threading.Event(), threading.Event()
        self.seen = []

    def __call__(self, config, on_event, cache_dir=None):
        self.seen.append(config)
        for i in range(1, 4):
            on_event(Event("epoch", "teacher", i, 3, {"phase": "teacher", "epoch": i, "accuracy": 0.5}))
            if (len(self.seen), i) == self.pause_at:
                self.reached.set()
                self.release.wait(10)
        if self.fail:
            raise self.fail


def test_stop_ends_the_run_at_the_next_event_and_keeps_earlier_results():
    runner = Scripted(pause_at=(2, 2))
    configs = [tiny(sparsity=0.8), tiny(sparsity=0.9), tiny(sparsity=0.95)]
    job = Job(configs, runner=runner)
    assert runner.reached.wait(10)
    mid = job.view()
    assert mid.running and mid.index == 1 and mid.finished == [configs[0].key()]
    assert mid.stages["teacher"].done == 2 and mid.stages["teacher"].fraction == pytest.approx(2 / 3)
    job.stop()
    runner.release.set()
    view = job.wait(10)
    assert view.state == "stopped" and view.finished == [configs[0].key()]
    assert len(runner.seen) == 2  # the third configuration never started
    assert view.stages["teacher"].done == 2  # nothing recorded after the stop request


def test_configs_are_frozen_at_start():
    runner = Scripted(pause_at=(1, 1))
    config = tiny(sparsity=0.9)
    job = Job([config], runner=runner)
    assert runner.reached.wait(10)
    with pytest.raises(Exception):
        config.sparsity = 0.5  # RunConfig is frozen: nothing can reach into a running job
    runner.release.set()
    assert job.wait(10).state == "done" and runner.seen == [config]


def test_errors_become_messages_and_only_bugs_carry_a_traceback():
    bad_input = Job([tiny()], runner=Scripted(fail=ConfigError("model 'vgg' does not fit"))).wait(10)
    assert bad_input.state == "failed" and bad_input.error == "model 'vgg' does not fit"
    assert bad_input.details is None
    bug = Job([tiny()], runner=Scripted(fail=KeyError("oops"))).wait(10)
    assert bug.state == "failed" and bug.error.startswith("unexpected KeyError")
    assert "Traceback" in bug.details


def test_planned_stages_follow_the_method():
    assert planned_stages(tiny(method="deadwooding")) == ["teacher", "dual", "cut", "finetune", "eval", "profile"]
    assert planned_stages(tiny(method="deadwooding", deadwooding=DeadwoodingConfig(profile_samples=0)))[-1] == "eval"
    assert planned_stages(tiny(method="hydra")) == ["teacher", "hydra", "cut", "finetune", "eval"]
    assert planned_stages(tiny(method="magnitude")) == ["teacher", "cut", "finetune", "eval"]
    with pytest.raises(ValueError):
        Job([])


def test_a_damaged_cache_entry_is_a_notice_not_a_stage(fresh_cache):
    from deadwood.events import Event as E

    def runner(config, *, on_event=None, cache_dir=None):
        on_event(E("damaged", "run", metrics={"message": "record.json contradicts itself"}))
        on_event(E("start", "teacher", 0, 1))
        on_event(E("end", "teacher", 1, 1))

    view = Job([tiny(seed=71)], runner=runner).wait(timeout=60)
    assert view.notices == ["record.json contradicts itself"] and "run" not in view.stages


# --------------------------------------------------------------------------- the queue


def _until(predicate, timeout=10):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def test_jobs_past_the_limit_queue_in_order_and_say_how_many_runs_are_ahead():
    queue = RunQueue(lambda: 1)
    runners = [Scripted(pause_at=(1, 1)) for _ in range(3)]
    first = Job([tiny(sparsity=0.8)], runner=runners[0], queue=queue)
    assert runners[0].reached.wait(10)
    second = Job([tiny(sparsity=0.9)], runner=runners[1], queue=queue)
    third = Job([tiny(sparsity=0.95)], runner=runners[2], queue=queue)
    _until(lambda: queue.counts() == (1, 2))
    assert first.view().state == "running" and first.view().ahead == 0
    assert (second.view().state, second.view().ahead) == ("queued", 1)
    assert (third.view().state, third.view().ahead) == ("queued", 2)
    assert second.view().running  # a queued job is not finished: its page keeps following it
    assert runners[1].seen == [] and runners[2].seen == []  # nothing computes while queued
    runners[0].release.set()
    assert runners[1].reached.wait(10)  # the first in line goes next, the other moves up
    assert first.view().state == "done" and second.view().state == "running"
    assert (third.view().state, third.view().ahead) == ("queued", 1)
    runners[1].release.set()
    runners[2].release.set()
    assert third.wait(10).state == "done" and queue.counts() == (0, 0)


def test_stopping_a_queued_job_takes_it_out_of_the_queue_without_running_it():
    queue = RunQueue(lambda: 1)
    runners = [Scripted(pause_at=(1, 1)) for _ in range(3)]
    jobs_ = [Job([tiny(sparsity=s)], runner=r, queue=queue) for s, r in zip((0.8, 0.9, 0.95), runners)]
    assert runners[0].reached.wait(10)
    _until(lambda: queue.counts() == (1, 2))
    jobs_[1].stop()
    view = jobs_[1].wait(10)
    assert view.state == "stopped" and view.error is None and runners[1].seen == []
    assert jobs_[2].view().ahead == 1 and queue.counts() == (1, 1)
    runners[0].release.set()
    runners[2].release.set()
    assert jobs_[2].wait(10).state == "done" and runners[1].seen == []


@pytest.mark.parametrize("value, computing", [("2", 2), ("", 1)])
def test_max_runs_bounds_the_runs_computing_at_once(monkeypatch, value, computing):
    monkeypatch.setenv("DEADWOOD_MAX_RUNS", value)
    queue = RunQueue()
    runners = [Scripted(pause_at=(1, 1)) for _ in range(3)]
    jobs_ = [Job([tiny(sparsity=s)], runner=r, queue=queue) for s, r in zip((0.8, 0.9, 0.95), runners)]
    _until(lambda: queue.counts() == (computing, 3 - computing))
    assert [j.view().state for j in jobs_].count("running") == computing
    for r in runners:
        r.release.set()
    assert all(j.wait(10).state == "done" for j in jobs_)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_max_runs_setting_fails_the_job_with_a_message_naming_it(monkeypatch, value):
    monkeypatch.setenv("DEADWOOD_MAX_RUNS", value)
    runner = Scripted()
    view = Job([tiny()], runner=runner, queue=RunQueue()).wait(10)
    assert view.state == "failed" and view.details is None and runner.seen == []
    assert view.error.startswith(f"DEADWOOD_MAX_RUNS must be a whole number of at least 1, got {value!r}")


def test_run_pressed_again_while_queued_attaches_and_stop_leaves_the_queue_only_for_the_last_page():
    """Pages through watch(), on the server's one queue: a job already computing holds the place."""
    blocker, queued = Scripted(pause_at=(1, 1)), Scripted(pause_at=(1, 1))
    busy = watch([tiny(seed=91)], runner=blocker)
    try:
        assert blocker.reached.wait(10)
        page = watch([tiny(seed=92)], runner=queued)
        assert page.view().state == "queued" and page.view().ahead == 1
        assert watch([tiny(seed=92)], runner=queued, holding=page) is page  # Run again: the same hold
        other = watch([tiny(seed=92)], runner=queued)  # another page: the same job, one place in the queue
        assert other.job is page.job and other is not page and page.job.watchers == 2
        from app.jobs import QUEUE
        assert QUEUE.counts() == (1, 1)
        assert find(page.token) is page and find(other.token) is other and find("nonsense") is None
        page.stop()  # one page lets go: still queued for the other
        assert page.view().state == "stopped" and other.view().state == "queued"
        other.stop()  # the last: out of the queue, never computed
        assert other.job.wait(10).state == "stopped" and queued.seen == []
        assert QUEUE.counts() == (1, 0)
    finally:
        blocker.release.set()
        busy.stop()
        busy.job.wait(10)


def test_waiting_for_another_process_shows_until_the_run_goes_on():
    from deadwood.events import Event as E
    go = threading.Event()
    seen = threading.Event()

    def runner(config, *, on_event=None, cache_dir=None):
        on_event(E("waiting", "run", metrics={"message": "waiting for another process computing this run"}))
        seen.set()
        go.wait(10)
        on_event(E("cached", "run"))

    job = Job([tiny(seed=72)], runner=runner, queue=RunQueue(lambda: 1))
    assert seen.wait(10)
    view = job.view()
    assert view.waiting == "waiting for another process computing this run" and "run" not in view.stages
    go.set()
    view = job.wait(10)
    assert view.state == "done" and view.waiting is None and view.cached == [tiny(seed=72).key()]
