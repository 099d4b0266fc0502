"""``gmp``: Zhu & Gupta's cubic schedule, a global mask that only tightens, κ exactly at the end,
pruned weights that stay zero, and the schedules and budgets it refuses."""
import pytest
import torch

import deadwood
from deadwood import ConfigError, GmpConfig
from deadwood.cli import main
from deadwood.pruning.masks import prunable
from deadwood.methods import PruneContext, get_method
from deadwood.methods import gmp
from deadwood.methods.budget import plan
from deadwood.pipeline import Cache, get_teacher, load_data
from conftest import tiny


def test_the_schedule_follows_zhu_and_gupta_s_cubic_formula():
    # 200 steps, Δt 15, from 10 % to 90 %: t_0 = 20, the window ends at 180, n = 160 // 15 = 10
    kappa = 0.95
    got = gmp.schedule(200, 15, 0.1, 0.9, kappa)
    t0, n, dt = 20, 10, 15
    assert [t for t, _ in got] == [t0 + i * dt for i in range(1, n + 1)]
    for t, s in got:
        assert s == pytest.approx(kappa + (0 - kappa) * (1 - (t - t0) / (n * dt)) ** 3, abs=1e-12)
    assert got[-1] == (t0 + n * dt, kappa)  # κ exactly, not approximately
    values = [s for _, s in got]
    assert all(a < b for a, b in zip(values, values[1:]))
    # the cubic front-loads the pruning: the first tenth of the window cuts more than the last half
    assert values[0] > kappa - values[n // 2 - 1]


@pytest.mark.parametrize("steps,frequency,start,end", [(9, 10, 0.0, 1.0), (100, 30, 0.5, 0.75), (4, 1, 0.3, 0.35)])
def test_a_schedule_without_a_pruning_step_cannot_reach_kappa(steps, frequency, start, end):
    with pytest.raises(ConfigError, match="gmp cannot reach sparsity 0.9.*leaves 0 pruning steps"):
        gmp.schedule(steps, frequency, start, end, 0.9)


@pytest.mark.parametrize("fields,message", [
    (dict(epochs=0), "gmp.epochs must be a whole number >= 1"),
    (dict(frequency=0), "gmp.frequency must be a whole number of steps >= 1"),
    (dict(frequency=2.5), "gmp.frequency must be a whole number of steps >= 1"),
    (dict(start=0.6, end=0.4), r"gmp.end \(0.4\) must come after gmp.start \(0.6\)"),
    (dict(start=0.5, end=0.5), r"gmp.end \(0.5\) must come after gmp.start \(0.5\)"),
    (dict(end=1.5), r"gmp.end must be a fraction of the stage in \[0, 1\]"),
    (dict(lr=0.0), "gmp.lr must be > 0"),
])
def test_bad_gmp_settings_are_refused_by_name(fields, message):
    with pytest.raises(ConfigError, match=message):
        tiny(method="gmp", gmp=GmpConfig(**fields))


def test_an_own_stage_longer_than_the_matched_budget_is_refused():
    # tiny: solve 3 + fine-tune 2 = 5 epochs after the teacher
    with pytest.raises(ConfigError, match="budget 'matched' gives gmp 5 epochs .* fewer than its own stage's 6"):
        tiny(method="gmp", gmp=GmpConfig(epochs=6))
    whole = plan(tiny(method="gmp", gmp=GmpConfig(epochs=5)))  # all of it: no fine-tune left
    assert (whole.stage_epochs, whole.finetune_epochs) == (5, 0)
    assert plan(tiny(method="gmp", gmp=GmpConfig(epochs=6), budget="finetune")).by_stage() == {"gmp": 6, "finetune": 2}
    assert plan(tiny(method="gmp")).by_stage() == {"gmp": 3, "finetune": 2}  # None: the solve's epochs


def test_a_schedule_the_data_cannot_fill_fails_before_anything_is_written(tmp_path, capsys):
    # digits' 1437 training images at batch 64: 23 steps an epoch, 69 in the 3 epochs of the stage
    config = tiny(method="gmp", gmp=GmpConfig(frequency=70))
    with pytest.raises(ConfigError, match="its stage has 69 optimiser steps, and pruning every 70 steps"):
        deadwood.run(config, cache_dir=tmp_path / "cache", out=tmp_path / "out")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()
    code = main(["run", "--method", "gmp", "--gmp-frequency", "70", "--deadwooding-epochs", "3",
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: gmp cannot reach sparsity 0.95") and err.count("\n") == 1
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def teacher():
    config = tiny(method="gmp")
    device = torch.device("cpu")
    train, test = load_data(config, device)
    model, _ = get_teacher(config, train, test, device, Cache())
    return train, test, model


def test_the_mask_only_tightens_pruned_weights_stay_zero_and_kappa_is_reached(teacher, monkeypatch):
    train, test, model = teacher
    config = tiny(method="gmp", sparsity=0.95, min_keep=40)
    seen = []  # at every pruning step: the model's weights and the mask before it, the mask after
    cut = gmp.global_cut

    def watching(scores, sparsity, min_keep):
        mask, report = cut(scores, sparsity, min_keep)
        weights = {n: p.detach().clone() for n, p in prunable(student[0]).items()}
        seen.append((weights, {n: s >= 0 for n, s in scores.items()}, mask, sparsity))
        return mask, report

    student = []
    real_student = PruneContext.student

    def remember(self):
        student.append(real_student(self))
        return student[-1]

    monkeypatch.setattr(gmp, "global_cut", watching)
    monkeypatch.setattr(PruneContext, "student", remember)
    events = []
    result = get_method("gmp").prune(PruneContext(model, config, train, test, torch.device("cpu"),
                                                  on_event=events.append))

    steps = 3 * 23
    expected = gmp.schedule(steps, 10, 0.0, 1.0, 0.95)
    assert [s for *_, s in seen] == [s for _, s in expected]
    total = sum(p.numel() for p in prunable(model).values())
    for i, (weights, before, mask, sparsity) in enumerate(seen):
        assert sum(int((~m).sum()) for m in mask.values()) == round(sparsity * total)
        for n, m in mask.items():
            assert not (m & ~before[n]).any(), f"step {i}: a pruned weight of {n} came back"
            # what earlier steps pruned was still exactly zero when this one came (training kept it so)
            assert (weights[n][~before[n]] == 0).all(), f"step {i}: a pruned weight of {n} moved"
            assert int(m.sum()) >= 40  # the collapse guard, as the cut's
    # κ exactly at the end, and the model carries the final mask
    final = result.mask
    assert sum(int((~m).sum()) for m in final.values()) == round(0.95 * total)
    assert all(torch.equal(final[n], seen[-1][2][n]) for n in final)
    for n, p in prunable(result.model).items():
        assert (p[~final[n]] == 0).all()
    # the sparsity the stage reports rises epoch by epoch to κ
    per_epoch = [e.metrics["sparsity"] for e in events if e.kind == "epoch" and e.stage == "gmp"]
    assert len(per_epoch) == 3 and all(a < b for a, b in zip(per_epoch, per_epoch[1:]))
    assert per_epoch[-1] == pytest.approx(round(0.95 * total) / total, abs=1e-12)
    assert result.info["schedule"] == {"steps": steps, "frequency": 10, "pruning_steps": len(expected),
                                       "first_step": expected[0][0], "last_step": expected[-1][0]}


def test_the_last_pruning_step_may_close_the_stage(teacher):
    # 23 steps a epoch, 2 epochs, Δt 23: pruning at 23 and 46, the stage's last step
    train, test, model = teacher
    config = tiny(method="gmp", gmp=GmpConfig(epochs=2, frequency=23), sparsity=0.9)
    result = get_method("gmp").prune(PruneContext(model, config, train, test, torch.device("cpu")))
    assert result.info["schedule"]["last_step"] == 46 == result.info["schedule"]["steps"]
    total = sum(p.numel() for p in prunable(model).values())
    assert sum(int((p == 0).sum()) for p in prunable(result.model).values()) == round(0.9 * total)
    assert [h["sparsity"] for h in result.history][-1] == pytest.approx(round(0.9 * total) / total)


def test_gmp_trains_the_budget_the_protocol_gives_it():
    matched = deadwood.run(tiny(method="gmp", seed=81)).record
    assert matched.train_epochs["by_stage"] == {"gmp": 3, "finetune": 2}
    assert [h["epoch"] for h in matched.history if h["phase"] == "gmp"] == [1, 2, 3]
    assert len([h for h in matched.history if h["phase"] == "finetune"]) == 2
    assert matched.train_epochs["steps"] == {"gmp": 69, "finetune": 46}
