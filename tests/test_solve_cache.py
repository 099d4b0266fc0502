"""One solve, every sparsity: Stage 1 cached on its own, the sparsity profile, and the dead wood at any κ."""
import json

import pytest
import torch

from deadwood import ConfigError, RunStopped, run, with_updates
from deadwood.config import DeadwoodingConfig
from deadwood.pruning.dead_wood import dead_fractions, magnitude_quantiles
from deadwood.pruning.masks import global_threshold, magnitudes
from deadwood.models.registry import build_model
from deadwood.data.datasets import dataset_info
from deadwood.pruning.sparsity_profile import at, default_sparsities, sparsity_profile
from deadwood.storage.cache import Cache
from deadwood.storage.solves import SUMMARY_FILE
from conftest import tiny


def _events(config, cache):
    seen = []
    loaded = run(config, on_event=lambda e: seen.append((e.kind, e.stage)), cache_dir=cache)
    return loaded, seen


def test_a_second_sparsity_reuses_the_solve_and_runs_no_solve_epochs(tmp_path):
    first, seen1 = _events(tiny(method="deadwooding", sparsity=0.9, seed=41), tmp_path)
    second, seen2 = _events(tiny(method="deadwooding", sparsity=0.95, seed=41), tmp_path)
    assert ("epoch", "dual") in seen1 and first.record.prune_info["solve_cached"] is False
    assert ("cached", "dual") in seen2 and not [s for s in seen2 if s == ("epoch", "dual")]
    assert second.record.prune_info["solve_cached"] is True
    assert second.record.global_sparsity == pytest.approx(0.95, abs=1e-3)
    # the solve's own history and report come with it, the dead wood redrawn at the new κ
    dual1 = [h for h in first.record.history if h["phase"] == "dual"]
    dual2 = [h for h in second.record.history if h["phase"] == "dual"]
    assert [h["lambdas"] for h in dual1] == [h["lambdas"] for h in dual2]
    assert [h["magnitude_quantiles"] for h in dual1] == [h["magnitude_quantiles"] for h in dual2]
    assert all(sum(h["dead_fraction"].values()) > sum(g["dead_fraction"].values()) for g, h in zip(dual1, dual2))
    assert first.record.sparsity_profile == second.record.sparsity_profile


def test_a_reused_solve_gives_the_numbers_of_a_fresh_one(tmp_path):
    config = tiny(method="deadwooding", sparsity=0.95, seed=42)
    run(with_updates(config, sparsity=0.9), cache_dir=tmp_path / "shared")
    reused = run(config, cache_dir=tmp_path / "shared")
    fresh = run(config, cache_dir=tmp_path / "alone")
    assert reused.record.prune_info["solve_cached"] and not fresh.record.prune_info["solve_cached"]
    for field in ("one_shot_accuracy", "clean_accuracy", "global_sparsity", "layer_sparsity"):
        assert getattr(reused.record, field) == getattr(fresh.record, field), field
    assert reused.record.robustness["accuracy"] == fresh.record.robustness["accuracy"]
    for (n, a), b in zip(reused.model.state_dict().items(), fresh.model.state_dict().values()):
        assert torch.equal(a, b), n


def test_the_solve_key_leaves_out_the_sparsity_the_cut_the_finetune_and_the_evaluation():
    base = tiny(method="deadwooding")
    same = [with_updates(base, sparsity=0.5), with_updates(base, **{"finetune.epochs": 9}),
            with_updates(base, **{"evaluation.steps": 2}), with_updates(base, **{"cut.allocation": "uniform"}),
            with_updates(base, min_keep=3)]
    assert {c.solve_key() for c in same} == {base.solve_key()}
    for changed in (with_updates(base, epsilon=0.2), with_updates(base, seed=7),
                    with_updates(base, **{"deadwooding.dual_step": 0.2}), with_updates(base, batch_size=32),
                    with_updates(base, **{"teacher.epochs": 5})):
        assert changed.solve_key() != base.solve_key()


def test_profile_at_the_run_sparsity_is_the_records_one_shot_accuracy(tmp_path):
    # the default solve's 15 epochs: enough for the profile's rule (profile_samples) to give it the whole test split
    config = tiny(method="deadwooding", sparsity=0.9, seed=43, deadwooding=DeadwoodingConfig(epochs=15))
    loaded = run(config, cache_dir=tmp_path)
    p, r = loaded.record.sparsity_profile, loaded.record
    assert p["samples"] == 360  # the whole digits test split: the same samples as the one-shot accuracy
    assert len(p["sparsities"]) >= 40 and p["sparsities"][0] == 0 and max(p["sparsities"]) <= 0.995
    assert p["attack"] == "fgsm" and p["epsilon"] == r.config["epsilon"]
    assert p["student"]["clean"][p["sparsities"].index(0.9)] == r.one_shot_accuracy
    assert at(p, 0.9)["student"]["clean"] == r.one_shot_accuracy
    # nothing cut: the teacher's curve starts at the dense teacher's own accuracy on those samples
    from deadwood.data.datasets import load_dataset
    from deadwood.robustness.accuracy import accuracy

    assert p["teacher"]["clean"][0] == accuracy(loaded.dense(), load_dataset("digits", "test", seed=43))
    # robust accuracy never above clean at the same κ
    for who in ("student", "teacher"):
        assert all(rb <= c + 1e-9 for c, rb in zip(p[who]["clean"], p[who]["robust"]))


def test_profile_grid_is_dense_near_the_top_and_refuses_bad_sparsities():
    grid = default_sparsities()
    assert len(grid) >= 40 and grid == sorted(grid) and grid[-1] == 0.995
    assert sum(k >= 0.9 for k in grid) > sum(k < 0.5 for k in grid)
    model = build_model("mlp", dataset_info("digits"))
    from deadwood.data.datasets import load_dataset

    test = load_dataset("digits", "test")
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="in \\[0, 1\\)"):
            sparsity_profile(model, model, test, tiny(), sparsities=[bad])
    with pytest.raises(ConfigError, match="in \\[0, 1\\)"):
        at({"sparsities": [0.5], "student": {}, "teacher": {}}, 1.0)


def test_dead_fractions_from_quantiles_follow_the_exact_ones():
    torch.manual_seed(0)
    model = build_model("mlp", dataset_info("digits"), seed=3)
    q = magnitude_quantiles(model)
    mags = magnitudes(model)
    sizes = {n: m.numel() for n, m in mags.items()}
    for kappa in (0.3, 0.9, 0.99):
        theta = global_threshold(mags, kappa)
        exact = {n: float((m <= theta).float().mean()) for n, m in mags.items()}
        approx = dead_fractions(q, sizes, kappa)
        assert approx == pytest.approx(exact, abs=0.015)
    assert dead_fractions(q, sizes, 0.0) == {n: 0.0 for n in q}


def test_a_damaged_cached_solve_is_recomputed_never_served(tmp_path):
    config = tiny(method="deadwooding", sparsity=0.9, seed=44)
    run(config, cache_dir=tmp_path)
    folder = Cache(tmp_path).solve_dir(config)
    (folder / SUMMARY_FILE).write_text("{not json")
    again = run(with_updates(config, sparsity=0.95), cache_dir=tmp_path)
    assert again.record.prune_info["solve_cached"] is False
    assert json.loads((folder / SUMMARY_FILE).read_text())["history"]  # replaced by a whole one
    (folder / "student.pt").write_bytes(b"\x00" * 100)
    third = run(with_updates(config, sparsity=0.8), cache_dir=tmp_path)
    assert third.record.prune_info["solve_cached"] is False


def test_stopping_during_the_solve_keeps_the_teacher_and_no_half_solve(tmp_path):
    config = tiny(method="deadwooding", sparsity=0.9, seed=45)

    def stop(e):
        if e.kind == "epoch" and e.stage == "dual" and e.epoch == 2:
            raise RunStopped("stopped by the user")

    with pytest.raises(RunStopped):
        run(config, on_event=stop, cache_dir=tmp_path)
    assert any((tmp_path / "teachers").iterdir())
    solves = tmp_path / "solves"
    assert not solves.exists() or not any(solves.iterdir())  # no entry and no staging leftovers
    _, seen = _events(config, tmp_path)
    assert ("cached", "teacher") in seen and ("epoch", "dual") in seen


def test_keep_dual_solves_afresh_and_leaves_the_cache_alone(tmp_path):
    config = tiny(method="deadwooding", sparsity=0.9, seed=46, finetune=tiny().finetune.__class__(epochs=2,
                                                                                                  keep_dual=True))
    loaded = run(config, cache_dir=tmp_path)
    assert loaded.record.prune_info["solve_cached"] is False
    assert not (tmp_path / "solves").exists() or not any((tmp_path / "solves").iterdir())


def test_the_cache_facade_reads_a_stored_solves_profile_at_any_sparsity_and_discards_only_the_run(tmp_path):
    config = tiny(method="deadwooding", sparsity=0.9, seed=46)
    cache = Cache(tmp_path)
    assert cache.profile(config) is None and cache.record(config) == (None, None)
    loaded = run(config, cache_dir=tmp_path)
    assert loaded.record.sparsity_profile  # the run computed one
    assert cache.profile(with_updates(config, sparsity=0.5)) == loaded.record.sparsity_profile  # any κ
    assert cache.profile(with_updates(config, method="magnitude")) is None  # stores no solve
    assert cache.profile(with_updates(config, **{"finetune.keep_dual": True})) is None
    assert cache.record(config)[0].to_dict() == loaded.record.to_dict()
    cache.discard(config)
    assert cache.record(config) == (None, None) and not cache.has_run(config)
    assert cache.solves.has(config) and cache.has_teacher(config)  # the run's starting points stay
