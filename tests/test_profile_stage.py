"""The sparsity profile as a stage of its own: published after the run, one event per cut, its own
time in the record, sized by one rule, and never lost or served half written."""
import re

import pytest
from torch import nn

import deadwood.pipeline as pipeline
from deadwood import DeadwoodingConfig, RunConfig, RunStopped, run, with_updates
from deadwood.cli import main
from deadwood.data.datasets import load_split
from deadwood.models.registry import model_for
from deadwood.pruning.masks import max_sparsity, prunable
from deadwood.pruning.sparsity_profile import MIN_SAMPLES, SOLVE_SHARE, profile_grid, profile_samples
from deadwood.stages import planned
from deadwood.storage.cache import Cache
from deadwood.storage.solves import PROFILE_FILE
from conftest import tiny


def _kinds(seen, stage="profile"):
    return [(k, s, e, t) for k, s, e, t in seen if s == stage]


def test_a_run_emits_the_profile_stage_one_event_per_cut_after_the_run_is_published(tmp_path):
    config = tiny(method="deadwooding", seed=51)
    cache, seen, at_start = Cache(tmp_path), [], {}

    def on_event(e):
        seen.append((e.kind, e.stage, e.epoch, e.total))
        if e.kind == "start" and e.stage == "profile":  # the run is served already; its profile is not there
            record, damage = cache.record(config)
            at_start.update(record=record, damage=damage, profile=cache.profile(config))

    loaded = run(config, on_event=on_event, cache_dir=tmp_path)
    events = _kinds(seen)
    cuts = len(loaded.record.sparsity_profile["sparsities"])
    assert events[0] == ("start", "profile", 0, cuts) and events[-1] == ("end", "profile", cuts, cuts)
    assert [e[2:] for e in events[1:-1]] == [(i, cuts) for i in range(1, cuts + 1)]  # done/total per cut
    assert seen.index(events[0]) > max(i for i, (k, s, *_) in enumerate(seen) if s == "eval")  # after the evaluation
    assert at_start["damage"] is None and at_start["record"] is not None
    assert at_start["record"].sparsity_profile is None and at_start["profile"] is None
    assert at_start["record"].clean_accuracy == loaded.record.clean_accuracy
    # afterwards: in the record with its own time, apart from the solve's, and beside the solve
    timings = loaded.record.timings
    assert timings["profile"] > 0 and {"prune", "total"} <= set(timings)
    assert cache.record(config)[0].sparsity_profile == loaded.record.sparsity_profile
    assert cache.profile(with_updates(config, sparsity=0.5)) == loaded.record.sparsity_profile
    assert planned(config)[-1] == "profile"

    # another κ of the same solve: the stored profile, no cut measured again
    seen.clear()
    other = run(with_updates(config, sparsity=0.8), on_event=lambda e: seen.append((e.kind, e.stage, e.epoch, e.total)),
                cache_dir=tmp_path)
    assert _kinds(seen) == [("cached", "profile", 0, 0)]
    assert other.record.sparsity_profile == loaded.record.sparsity_profile and other.record.timings["profile"] == 0


def test_profile_samples_0_means_no_profile_stage(tmp_path):
    config = tiny(method="deadwooding", seed=52, deadwooding=DeadwoodingConfig(epochs=2, profile_samples=0))
    seen = []
    loaded = run(config, on_event=lambda e: seen.append((e.kind, e.stage, e.epoch, e.total)), cache_dir=tmp_path)
    assert not _kinds(seen) and loaded.record.sparsity_profile is None and "profile" not in loaded.record.timings
    assert "profile" not in planned(config)
    assert run(config, cache_dir=tmp_path).record.sparsity_profile is None  # a look-up, and still none


@pytest.mark.parametrize("how", ["error", "stop"])
def test_an_interrupted_profile_leaves_the_run_served_and_the_next_request_computes_it(how, tmp_path, monkeypatch):
    config = tiny(method="deadwooding", seed=53 if how == "error" else 54)
    cache = Cache(tmp_path)
    if how == "error":
        def broken(*args, **kwargs):
            raise RuntimeError("profile broke")

        monkeypatch.setattr(pipeline, "sparsity_profile", broken)
        with pytest.raises(RuntimeError, match="profile broke"):
            run(config, cache_dir=tmp_path)
        monkeypatch.undo()
    else:
        def stop_at_third_cut(e):
            if e.kind == "epoch" and e.stage == "profile" and e.epoch == 3:
                raise RunStopped("stopped")

        with pytest.raises(RunStopped):
            run(config, on_event=stop_at_third_cut, cache_dir=tmp_path)
    record, damage = cache.record(config)
    assert damage is None and record is not None and record.sparsity_profile is None  # served, no profile
    assert "profile" not in record.timings and cache.profile(config) is None

    seen = []
    loaded = run(config, on_event=lambda e: seen.append((e.kind, e.stage, e.epoch, e.total)), cache_dir=tmp_path)
    assert ("cached", "run", 0, 0) in seen and ("start", "profile") in [(k, s) for k, s, *_ in seen]
    assert not [s for k, s, *_ in seen if k == "start" and s in ("teacher", "dual", "finetune", "eval")]
    assert loaded.record.sparsity_profile and loaded.record.timings["profile"] > 0
    assert loaded.record.clean_accuracy == record.clean_accuracy  # the same run, completed
    assert cache.profile(config) == loaded.record.sparsity_profile
    # once complete, a look-up computes nothing
    seen.clear()
    run(config, on_event=lambda e: seen.append((e.kind, e.stage)), cache_dir=tmp_path)
    assert seen == [("cached", "run")]


def test_a_half_written_profile_file_is_never_served(tmp_path):
    config = tiny(method="deadwooding", seed=53)
    cache = Cache(tmp_path)
    run(config, cache_dir=tmp_path)
    good = cache.profile(config)
    assert good is not None
    path = cache.solve_dir(config) / PROFILE_FILE
    path.write_text(path.read_text()[: len(path.read_text()) // 2])  # as a crash inside a plain write would leave it
    assert cache.profile(config) is None and cache.solves.summary(config)["profile"] is None
    assert cache.solves.has(config)  # the solve itself stays served
    # a run at another κ of the same solve computes the profile again
    other = run(with_updates(config, sparsity=0.8), cache_dir=tmp_path)
    assert other.record.sparsity_profile["sparsities"] == good["sparsities"] and cache.profile(config) is not None


def _layer_sizes(model: nn.Module) -> dict:
    return {f"{n}.weight": m.weight.numel() for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def test_the_rule_gives_a_large_network_on_little_data_a_smaller_profile_and_keeps_it_under_the_solve():
    import torchvision

    digits = RunConfig()  # the embedded default: digits, mlp
    mlp = {n: p.numel() for n, p in prunable(model_for(digits)).items()}
    train = len(load_split(digits, "train"))
    # digits/mlp at the defaults: the whole test split, as before the rule
    assert profile_samples(digits, mlp, train, 360) == 360
    # resnet18 (untrained: only its layer sizes count) on a 3-class folder of 300 train and 300 test images
    resnet = _layer_sizes(torchvision.models.resnet18(num_classes=3))
    assert max_sparsity(resnet, digits.min_keep) > 0.995  # every κ of the grid: 46 cuts
    cuts = len(profile_grid(digits, resnet))
    n = profile_samples(digits, resnet, 300, 300)
    assert MIN_SAMPLES <= n < 300 and n < 360
    # the rule: attacked profile images (2 networks x cuts x samples) at most SOLVE_SHARE x the solve's images
    assert 2 * cuts * n <= SOLVE_SHARE * digits.deadwooding.epochs * 300
    assert 2 * cuts * (n + 1) > SOLVE_SHARE * digits.deadwooding.epochs * 300  # and no smaller than it must be
    # never more than asked, never below the floor, 0 stays none
    assert profile_samples(with_updates(digits, **{"deadwooding.profile_samples": 100}), mlp, train, 360) == 100
    assert profile_samples(digits, resnet, 10, 150) == MIN_SAMPLES  # the floor
    assert profile_samples(with_updates(digits, **{"deadwooding.profile_samples": 0}), resnet, 150, 150) == 0


def test_the_cli_shows_the_profile_bar(tmp_path, capsys):
    code = main(["run", "--cache-dir", str(tmp_path), "--method", "deadwooding", "--teacher-epochs", "2",
                 "--deadwooding-epochs", "2", "--finetune-epochs", "1", "--evaluation-steps", "2",
                 "--evaluation-samples", "60", "--seed", "55"])
    err = capsys.readouterr().err
    assert code == 0
    # one bar, counting cuts, that reaches its total (46 κ on digits/mlp)
    bars = err.replace("\r", "\n")
    assert re.search(r"^sparsity profile: 100%\|.*\| 46/46 \[.*(cut/s|s/cut)\]", bars, re.M), err[-800:]
