"""Analysis jobs (app.jobs.analysis): the key a result is stored under, storing it without pickle and
reading it back safely, and one analysis computed through a job and read from its file."""
import json
import math
import pickle

import numpy as np
import pytest

from app.jobs import Job, RunQueue
from app.jobs.analysis import ANALYSES, Analysis, AnalysisProgress, encode, function, load, save
from deadwood import Event, RunConfig, run, with_updates
from deadwood.analysis import distortion_sweep
from conftest import tiny


def explore(**changes) -> Analysis:
    inputs = dict(config=RunConfig(seed=3), attack="pgd", epsilon=0.1, samples=40)
    return Analysis.of("explore", {**inputs, **changes})


def test_the_same_inputs_give_the_same_file_and_any_other_input_another(tmp_path):
    assert explore().path(tmp_path) == explore().path(tmp_path)
    assert Analysis.of("explore", dict(samples=40, epsilon=0.1, attack="pgd", config=RunConfig(seed=3))).key() \
        == explore().key()  # the order the inputs come in does not matter
    others = [explore(epsilon=0.2), explore(samples=41), explore(attack="fmn"), explore(config=RunConfig(seed=4)),
              explore(config=with_updates(RunConfig(seed=3), sparsity=0.8)),
              Analysis.of("regions", dict(config=RunConfig(seed=3), attack="pgd", epsilon=0.1, samples=40))]
    paths = {o.path(tmp_path) for o in others} | {explore().path(tmp_path)}
    assert len(paths) == len(others) + 1
    assert explore().path(tmp_path).parent == tmp_path / "analyses"


def test_inputs_come_back_with_their_configurations():
    config = with_updates(RunConfig(seed=3), sparsity=0.8, method="magnitude")
    inputs = explore(config=config).inputs
    assert isinstance(inputs["config"], RunConfig) and inputs["config"].key() == config.key()
    with pytest.raises(TypeError):
        Analysis.of("explore", dict(config=object()))
    with pytest.raises(KeyError):
        Analysis.of("no such analysis", {})


def test_every_registered_analysis_imports():
    for name, (_, stages) in ANALYSES.items():
        assert callable(function(name)) and stages


def test_a_result_comes_back_as_it_was_stored(tmp_path):
    result = {"maps": {"dense": {"labels": np.arange(12, dtype=np.int64).reshape(3, 4), "count": np.int64(7),
                                 "xs": np.linspace(0, 1, 5, dtype=np.float32), "ok": np.array([True, False])}},
              "by_epsilon": {0.0: [1.0, None], 0.1: [math.nan, 0.5]}, "pair": ("a", 2), "inf": math.inf,
              "rows": [{"__array__": "not an array reference"}]}
    path = tmp_path / "analyses" / "r.npz"
    save(path, result)
    back = load(path)
    assert np.array_equal(back["maps"]["dense"]["labels"], result["maps"]["dense"]["labels"])
    assert back["maps"]["dense"]["labels"].dtype == np.int64 and back["maps"]["dense"]["xs"].dtype == np.float32
    assert back["maps"]["dense"]["count"] == 7 and back["maps"]["dense"]["ok"].tolist() == [True, False]
    assert set(back["by_epsilon"]) == {0.0, 0.1} and back["by_epsilon"][0.0] == [1.0, None]
    assert math.isnan(back["by_epsilon"][0.1][0]) and back["inf"] == math.inf
    assert back["pair"] == ["a", 2] and back["rows"] == [{"__array__": "not an array reference"}]
    assert [p.name for p in path.parent.iterdir()] == ["r.npz"]  # the temporary file was renamed


def test_what_pickle_would_need_is_neither_stored_nor_loaded(tmp_path):
    with pytest.raises(TypeError):
        encode({"x": np.array([object()], dtype=object)})
    with pytest.raises(TypeError):
        encode({"x": {1, 2}})
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __json__=np.frombuffer(b'{"__array__": "a0"}', dtype=np.uint8),
             a0=np.array([{"evil": 1}], dtype=object))  # savez pickles object arrays
    assert load(pickled) is None
    plain_pickle = tmp_path / "plain.npz"
    plain_pickle.write_bytes(pickle.dumps({"a": 1}))
    assert load(plain_pickle) is None
    save(tmp_path / "cut.npz", {"a": np.zeros(1000)})
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cut.npz").read_bytes()[:300])
    assert load(tmp_path / "cut.npz") is None
    assert load(tmp_path / "absent.npz") is None


def test_progress_reads_the_analysis_stages_not_the_runs_it_reads():
    task = Analysis.of("distortion", dict(config=RunConfig(), methods=["magnitude"], sparsities=[0.5]))
    p = AnalysisProgress(task)
    assert list(p.snapshot()["stages"]) == ["distortion"]
    p.record(Event("cached", "run"))
    p.record(Event("start", "distortion", 0, 2))
    p.record(Event("epoch", "distortion", 1, 2))
    stage = p.snapshot()["stages"]["distortion"]
    assert (stage.state, stage.done, stage.total) == ("running", 1, 2)
    p.record(Event("end", "distortion", 2, 2))
    assert p.snapshot()["stages"]["distortion"].fraction == 1.0


def test_a_job_computes_an_analysis_and_stores_what_the_engine_computes(fresh_cache):
    config = tiny(method="magnitude", sparsity=0.5, seed=41)
    run(config)
    task = Analysis.of("distortion", dict(config=config, methods=["magnitude"], sparsities=[0.5]))
    seen = []

    def in_thread(t, on_event, cache_dir):  # the worker's call, in this process
        t.compute(on_event=lambda e: (seen.append(e), on_event(e)), cache_dir=cache_dir)

    view = Job([task], runner=in_thread, queue=RunQueue(lambda: 1)).wait(120)
    assert view.state == "done", view.error
    assert view.finished == [task.key()] and view.stages["distortion"].state == "done"
    assert ("end", "distortion") in [(e.kind, e.stage) for e in seen]
    expected = distortion_sweep(config, ("magnitude",), (0.5,))
    assert json.dumps(load(task.path(fresh_cache)), sort_keys=True) == json.dumps(expected, sort_keys=True)
