import pytest

from deadwood import RunStopped, run
from deadwood.pipeline import Cache
from conftest import tiny


def test_robustness_curve_starts_at_clean_accuracy_and_includes_0_1():
    rec = run(tiny(method="magnitude")).record
    curve = rec.robustness
    assert curve["epsilons"][0] == 0.0 and 0.1 in curve["epsilons"]
    assert curve["accuracy"][0] == rec.clean_accuracy
    assert curve["steps"] >= 2 and curve["accuracy"][curve["epsilons"].index(0.1)] <= rec.clean_accuracy
    assert rec.teacher["robustness"]["accuracy"][0] == rec.teacher["clean_accuracy"]
    assert set(rec.timings) >= {"teacher", "prune", "finetune", "eval", "total"}


def test_repeating_a_run_is_a_lookup():
    config = tiny(method="random", seed=5)
    first = run(config)
    events = []
    second = run(config, on_event=events.append)
    assert [(e.kind, e.stage) for e in events] == [("cached", "run")]
    assert second.record.to_dict() == first.record.to_dict()


def test_teacher_is_shared_across_methods_and_sparsities(fresh_cache):
    run(tiny(method="magnitude", seed=6, sparsity=0.8))
    events = []
    run(tiny(method="magnitude-layerwise", seed=6, sparsity=0.95), on_event=events.append)
    assert ("cached", "teacher") in [(e.kind, e.stage) for e in events]
    assert not any(e.stage == "teacher" and e.kind == "epoch" for e in events)


def test_stop_request_keeps_the_finished_teacher(fresh_cache):
    config = tiny(method="deadwooding", seed=7)

    def stop_in_dual(e):
        if e.stage == "dual" and e.kind == "epoch":
            raise RunStopped("stopped by the user")

    with pytest.raises(RunStopped):
        run(config, on_event=stop_in_dual)
    cache = Cache()
    assert not cache.has_run(config)
    assert (cache.teacher_dir(config) / "dense.pt").is_file()
    events = []
    run(config, on_event=events.append)
    assert ("cached", "teacher") in [(e.kind, e.stage) for e in events]


def test_keep_dual_carries_multipliers_into_fine_tuning():
    from deadwood import FinetuneConfig

    rec = run(tiny(method="deadwooding", finetune=FinetuneConfig(epochs=2, keep_dual=True))).record
    dual = [h for h in rec.history if h["phase"] == "dual"]
    ft = [h for h in rec.history if h["phase"] == "finetune"]
    assert len(ft) == 2 and all("lambdas" in h and "violations" in h for h in ft)
    for name, lam in dual[-1]["lambdas"].items():  # dual ascent: multipliers never fall
        assert ft[0]["lambdas"][name] >= lam - 1e-9
    plain = run(tiny(method="deadwooding")).record
    assert all("lambdas" not in h for h in plain.history if h["phase"] == "finetune")


@pytest.mark.parametrize("env,expected", [(None, 1), ("2", 2)])
def test_runs_use_deadwood_threads_cpu_threads_and_restore_them(monkeypatch, env, expected):
    import torch

    if env is None:
        monkeypatch.delenv("DEADWOOD_THREADS", raising=False)
    else:
        monkeypatch.setenv("DEADWOOD_THREADS", env)
    before = torch.get_num_threads()
    seen = []
    run(tiny(method="magnitude", seed=11 if env is None else 12), use_cache=False,
        on_event=lambda e: seen.append(torch.get_num_threads()))
    assert seen and set(seen) == {expected}
    assert torch.get_num_threads() == before


def test_a_run_key_covers_only_the_sections_its_method_reads():
    from deadwood import DeadwoodingConfig, HydraConfig
    from deadwood.config import with_updates

    base = tiny()
    # (under the matched budget the solve's epochs set every method's budget: they stay as they are here)
    tuned = with_updates(base, deadwooding=DeadwoodingConfig(epochs=base.deadwooding.epochs, dual_step=0.3),
                         hydra=HydraConfig(epochs=4))
    for method in ("magnitude", "random", "magnitude-layerwise", "gmp"):
        assert with_updates(base, method=method).key() == with_updates(tuned, method=method).key()
    # the method's own section does decide its run, and so does everything shared
    assert with_updates(base, method="deadwooding").key() != with_updates(tuned, method="deadwooding").key()
    assert with_updates(base, method="hydra").key() != with_updates(tuned, method="hydra").key()
    assert base.key() != with_updates(base, sparsity=0.95).key()
    assert base.key() != with_updates(base, method="random").key()
