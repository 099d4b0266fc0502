"""app/jobs/: a job that no page follows any more (its tabs were closed) is stopped, and the queue moves on.

The queue's clock is a fake one here, moved by the test: the followers' marks and the abandonment
time are read on it, so nothing depends on how fast this machine is; only the queued jobs' looks
(every CHECK_EVERY s of real time) and the runs' events happen in real time.
"""
import threading
import time

import pytest

from app.jobs import Job, RunQueue
from app.jobs.run_queue import CHECK_EVERY
from deadwood import DeadwoodingConfig, Event, RunStopped
from deadwood.pipeline import Cache
from conftest import tiny

PATIENCE = 5.0  # seconds on the fake clock


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Endless:
    """A stand-in for deadwood.run that emits an epoch event every few milliseconds until stopped."""

    def __init__(self):
        self.started, self.events, self.seen = threading.Event(), 0, []

    def __call__(self, config, on_event, cache_dir=None):
        self.seen.append(config)
        on_event(Event("start", "teacher", 0, 10**6))
        self.started.set()
        for i in range(1, 10**6):
            self.events += 1
            on_event(Event("epoch", "teacher", i, 10**6))
            time.sleep(0.005)


def _until(predicate, timeout=20):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def _looks(n=4):
    """Real time for ``n`` of the queued jobs' looks for abandoned jobs."""
    time.sleep(n * CHECK_EVERY)


@pytest.fixture
def queue(monkeypatch):
    monkeypatch.setenv("DEADWOOD_ABANDON_AFTER", str(PATIENCE))
    clock = Clock()
    q = RunQueue(lambda: 1, clock=clock)
    return q, clock


def _stop_all(*jobs_):
    for job in jobs_:
        job.stop()
    for job in jobs_:
        job.wait(10)


def test_a_job_whose_only_follower_went_quiet_is_stopped_after_its_time_and_the_next_starts(queue):
    q, clock = queue
    first_run, second_run = Endless(), Endless()
    first = Job([tiny(seed=401)], runner=first_run, queue=q)
    first.follow("closed-tab")
    assert first_run.started.wait(10)
    second = Job([tiny(seed=402)], runner=second_run, queue=q)
    second.follow("new-tab")
    _until(lambda: second.view().state == "queued")

    clock.now += PATIENCE - 1  # not yet: the closed tab's last poll is within the time
    second.follow("new-tab")
    _looks()
    assert first.view().state == "running" and second.view().state == "queued"

    clock.now += 2  # past the time: the queued job's thread stops the first, then computes
    second.follow("new-tab")
    _until(lambda: second_run.started.is_set())
    view = first.wait(10)
    assert view.state == "stopped" and view.error is None and view.abandoned_after == PATIENCE
    assert second.view().state == "running" and second.view().abandoned_after is None
    _stop_all(second)


def test_a_job_with_a_second_follower_still_polling_keeps_running(queue):
    q, clock = queue
    run = Endless()
    job = Job([tiny(seed=403)], runner=run, queue=q)
    job.follow("closed-tab")
    job.follow("open-tab")
    assert run.started.wait(10)
    waiting = Job([tiny(seed=404)], runner=Endless(), queue=q)  # its thread looks for abandoned jobs
    waiting.follow("queued-tab")
    for _ in range(4):
        clock.now += PATIENCE  # the closed tab is long quiet; the open one polls
        job.follow("open-tab")
        waiting.follow("queued-tab")
        events = run.events
        _looks(2)
        assert run.events > events  # the job went on computing, its own events looked too
    assert job.view().state == "running" and waiting.view().state == "queued"
    assert not job.abandoned() and job.watchers == 2
    # the open tab lets go (Stop): the quiet one does not count, so its page's Stop is the last one
    assert job.unfollow("open-tab") == 0
    _stop_all(job, waiting)


def test_a_queued_job_nobody_follows_leaves_the_queue_and_the_one_behind_moves_up(queue):
    q, clock = queue
    runs = [Endless() for _ in range(3)]
    jobs_ = [Job([tiny(seed=405)], runner=runs[0], queue=q)]
    jobs_[0].follow("a")
    assert runs[0].started.wait(10)
    for i, seed in ((1, 406), (2, 407)):
        jobs_.append(Job([tiny(seed=seed)], runner=runs[i], queue=q))
        jobs_[i].follow("bc"[i - 1])
    _until(lambda: q.counts() == (1, 2))
    unfollowed = Job([tiny(seed=408)], runner=Endless(), queue=q)  # never followed (a script): never dropped
    _until(lambda: q.counts() == (1, 3))
    clock.now += PATIENCE + 1  # "b" went quiet; "a" and "c" poll
    jobs_[0].follow("a")
    jobs_[2].follow("c")
    view = jobs_[1].wait(10)
    assert view.state == "stopped" and view.abandoned_after == PATIENCE and runs[1].seen == []
    assert jobs_[0].view().state == "running"
    assert (jobs_[2].view().state, jobs_[2].view().ahead) == ("queued", 1)
    assert unfollowed.view().state == "queued" and q.counts() == (1, 2)
    _stop_all(unfollowed, jobs_[2], jobs_[0])


def test_a_queued_page_sees_the_job_ahead_its_configuration_and_stage(queue):
    q, _ = queue
    release = threading.Event()

    def paused(config, on_event, cache_dir=None):
        on_event(Event("start", "teacher", 0, 8))
        on_event(Event("epoch", "teacher", 3, 8, {"epoch": 3, "accuracy": 0.5}))
        release.wait(10)
        if not release.is_set():
            raise RunStopped("test over")

    ahead_config = tiny(seed=409, method="magnitude")
    first = Job([ahead_config], runner=paused, queue=q)
    _until(lambda: first.view().stages["teacher"].done == 3)
    second = Job([tiny(seed=410)], runner=Endless(), queue=q)
    _until(lambda: second.view().state == "queued")
    before = second.view().before
    assert before.config == ahead_config and (before.index, before.count) == (0, 1)
    assert before.stage == "teacher" and (before.progress.done, before.progress.total) == (3, 8)
    assert before.progress.fraction == pytest.approx(3 / 8)
    assert first.view().before is None  # computing: nothing ahead
    release.set()
    _until(lambda: second.view().state == "running")
    assert second.view().before is None
    _stop_all(second)


@pytest.mark.parametrize("value", ["0", "soon", "-3"])
def test_a_bad_abandon_setting_fails_the_job_with_a_message_naming_it(monkeypatch, value):
    monkeypatch.setenv("DEADWOOD_ABANDON_AFTER", value)
    run = Endless()
    view = Job([tiny()], runner=run, queue=RunQueue(lambda: 1)).wait(10)
    assert view.state == "failed" and run.seen == []
    assert view.error.startswith(f"DEADWOOD_ABANDON_AFTER must be a number of seconds above 0, got {value!r}")


def test_an_abandoned_real_run_stops_in_its_worker_and_its_finished_teacher_stays_cached(monkeypatch):
    """A real run in a worker process, its follower polling until the dual solve begins, then quiet:
    its own thread stops it at an event after the (real, short) time, as Stop would."""
    monkeypatch.setenv("DEADWOOD_ABANDON_AFTER", "1")
    config = tiny(deadwooding=DeadwoodingConfig(epochs=500), seed=411)  # far too long to finish by itself
    job = Job([config])
    deadline = time.time() + 300
    while not any(h["phase"] == "dual" for h in job.view().history):
        assert job.view().running and time.time() < deadline, job.view().error
        job.follow("tab")
        time.sleep(0.05)
    view = job.wait(120)  # the tab was closed: nobody polls any more
    assert view.state == "stopped" and view.error is None and view.abandoned_after == 1.0
    assert view.stages["dual"].done < 500 and not Cache().has_run(config)
    again = Job([tiny(deadwooding=DeadwoodingConfig(epochs=1), seed=411)]).wait(600)
    assert again.state == "done" and again.stages["teacher"].state == "cached"


def test_a_page_queued_behind_an_analysis_job_names_what_it_computes():
    from app.jobs import Ahead, Analysis
    from app.jobs.progress import StageProgress
    from app.runs import ahead_text

    task = Analysis.of("regions", {"x": 1}, label="linear regions of magnitude at κ = 0.95")
    stage = next(iter(task.stages()))
    text = ahead_text(Ahead(config=task, index=0, count=1, stage=stage, progress=StageProgress(3, 10, "running"),
                            seconds=4.0))
    assert text.startswith("Computing now: linear regions of magnitude at κ = 0.95 · ")
    assert task.stages()[stage] in text and "epoch 3 of 10 (30%" in text
