"""'step' events: a training epoch slower than ``events.STEP_EVERY_S`` says how far into it the stage is,
on the command line's bars and the app's, and a stop no longer waits for the epoch's end.

The interval is set to 0 here (a report after every batch but the last) or to an hour (none), so no
test depends on how fast this machine trains."""
import io
import math

import pytest
import torch

import deadwood
from deadwood import Event, RunStopped, events
from deadwood.data.datasets import ArrayDataset
from deadwood.data.registry import DatasetInfo
from deadwood.progress import progress_bars
from deadwood.storage.cache import Cache
from deadwood.train import natural_step, run_epochs
from app.jobs.analysis import Analysis, AnalysisProgress
from app.jobs.progress import Progress
from app.runs import count_text
from conftest import tiny


def _data(n: int) -> ArrayDataset:
    g = torch.Generator().manual_seed(0)
    info = DatasetInfo(name="probe", input_shape=(4,), num_classes=2, mean=(0.5,), std=(0.3,), embedded=True)
    return ArrayDataset(torch.rand(n, 4, generator=g), torch.randint(0, 2, (n,), generator=g), info, "train")


def _train(every: float, monkeypatch) -> list[Event]:
    monkeypatch.setattr(events, "STEP_EVERY_S", every)
    model, seen = torch.nn.Linear(4, 2), []
    run_epochs(model, _data(70), natural_step(model), stage="teacher", epochs=2, lr=1e-2, batch_size=16, seed=0,
               on_event=seen.append)
    return seen


def test_each_batch_but_the_last_is_reported_when_the_interval_has_passed(monkeypatch):
    seen = _train(0, monkeypatch)
    steps = math.ceil(70 / 16)  # 5: the last batch holds 6
    expected = [("start", 0, None)]
    for epoch in (1, 2):
        expected += [("step", epoch, (k, steps)) for k in range(1, steps)] + [("epoch", epoch, None)]
    expected.append(("end", 2, None))
    assert [(e.kind, e.epoch, (e.metrics["step"], e.metrics["steps"]) if e.kind == "step" else None)
            for e in seen] == expected
    assert all(e.stage == "teacher" and e.total == 2 for e in seen)


def test_an_epoch_shorter_than_the_interval_sends_none(monkeypatch):
    assert [e.kind for e in _train(3600, monkeypatch)] == ["start", "epoch", "epoch", "end"]


def test_every_training_stage_reports_steps_and_none_reaches_the_history(fresh_cache, monkeypatch):
    monkeypatch.setattr(events, "STEP_EVERY_S", 0)
    seen = []
    loaded = deadwood.run(tiny(method="harp", seed=61), on_event=seen.append)  # HARP has a loop of its own
    steps = {e.stage for e in seen if e.kind == "step"}
    assert {"teacher", "harp", "finetune"} <= steps
    train_size = len(deadwood.load_dataset("digits", "train", seed=61))
    assert {e.metrics["steps"] for e in seen if e.kind == "step"} == {math.ceil(train_size / 64)}
    assert all("step" not in h for h in loaded.record.history)


def test_a_stop_at_a_step_stops_inside_the_epoch_and_stores_nothing_of_it(fresh_cache, monkeypatch):
    monkeypatch.setattr(events, "STEP_EVERY_S", 0)
    config, seen = tiny(method="magnitude", seed=62), []

    def stop_at_the_first_step(e: Event):
        seen.append(e)
        if e.kind == "step":
            raise RunStopped("stopped by the user")

    with pytest.raises(RunStopped):
        deadwood.run(config, on_event=stop_at_the_first_step)
    assert [(e.kind, e.stage) for e in seen][-2:] == [("start", "teacher"), ("step", "teacher")]
    assert seen[-1].epoch == 1 and seen[-1].metrics["step"] == 1  # one batch into the first epoch
    assert not Cache().has_teacher(config)


def test_the_app_shows_the_batches_of_the_epoch_under_way_and_the_bar_moves_with_them():
    p = Progress(tiny(method="magnitude"))
    p.record(Event("start", "teacher", 0, 4))
    for epoch in (1, 2):
        p.record(Event("epoch", "teacher", epoch, 4, {"phase": "teacher", "epoch": epoch, "loss": 1.0}))
    p.record(Event("step", "teacher", 3, 4, {"step": 5, "steps": 10}))
    stage = p.snapshot()["stages"]["teacher"]
    assert stage.fraction == pytest.approx(2.5 / 4)
    assert count_text(stage, "epoch") == "epoch 2 of 4 (batch 5 of 10 into epoch 3)"
    assert len(p.snapshot()["history"]) == 2  # a step is progress only
    assert p.current() == ("teacher", stage)
    p.record(Event("epoch", "teacher", 3, 4, {"phase": "teacher", "epoch": 3, "loss": 1.0}))
    stage = p.snapshot()["stages"]["teacher"]
    assert stage.fraction == pytest.approx(3 / 4) and count_text(stage, "epoch") == "epoch 3 of 4"


def test_an_analysis_that_trains_shows_its_steps_too():
    task = Analysis.of("similarity", dict(config=deadwood.RunConfig(), methods=["magnitude"], sparsities=[0.5]))
    p = AnalysisProgress(task)
    p.record(Event("start", "teacher", 0, 2))
    p.record(Event("step", "teacher", 1, 2, {"step": 3, "steps": 4}))
    assert p.snapshot()["stages"]["teacher"].fraction == pytest.approx(0.75 / 2)


def test_the_command_line_bar_names_the_batch_then_the_epoch_replaces_it(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    on_event = progress_bars()
    on_event(Event("start", "teacher", 0, 2))
    on_event(Event("step", "teacher", 1, 2, {"step": 3, "steps": 7}))
    assert "epoch 1: batch 3/7" in err.getvalue()
    on_event(Event("epoch", "teacher", 1, 2, {"loss": 1.0}))
    last = err.getvalue().rstrip().split("\r")[-1]  # the bar as it is drawn now
    assert "1/2" in last and "batch" not in last
    on_event(Event("end", "teacher", 2, 2))
