"""AutoAttack beside PGD: its numbers against PGD's on the same samples, the pgd-vs-autoattack check,
its bad-input answers, and the benchmark's two columns.

AutoAttack's cost is mostly fixed per batch (Square's 5000 queries and FAB-T's 9 x 100 steps run as
long as one sample survives), so only one evaluation here leaves survivors; the others pick a budget
at which APGD-CE or APGD-T already breaks every sample.
"""
import json
import math
import warnings

import pytest
import torch
from torch import nn

from deadwood import ConfigError, load_dataset, build_model, run
from deadwood import robustness as R
from deadwood.robustness import autoattack
from deadwood.bench.report import autoattack_lines, summarize
from deadwood.errors import ModelOutputError
from deadwood.train import natural_step, run_epochs
from conftest import Saturated, tiny


@pytest.fixture(scope="module")
def trained():
    """A digits MLP trained naturally (about a second) and 40 test samples."""
    train = load_dataset("digits", "train")
    model = build_model("mlp", train.info, seed=0)
    run_epochs(model, train, natural_step(model), stage="teacher", epochs=6, lr=1e-3, batch_size=64, seed=0)
    return model.eval(), load_dataset("digits", "test").subset(40, seed=1)


@pytest.fixture(scope="module")
def measured(trained):
    """AutoAttack at 0 and 0.1 with every check (so PGD-10 and FGSM on the same samples, and
    AutoAttack at the large epsilon 0.5), and the events it sent."""
    model, data = trained
    events = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", R.RobustnessWarning)  # a working attack on a plain model fails no check
        r = R.evaluate(model, data, "autoattack", [0.0, 0.1], on_event=events.append)
    return r, events


def _check(result, name):
    return next(c for c in result["checks"] if c["name"] == name)


def test_autoattack_is_never_weaker_than_pgd_on_the_same_samples(measured):
    r, _ = measured
    pgd = _check(r, "pgd-vs-autoattack")
    assert pgd["passed"] is True and pgd["pgd"] == "pgd" and pgd["pgd_steps"] == 10
    tol = max(R.TOLERANCE, 1 / r["samples"])
    for aa, p in zip(r["accuracy"], pgd["pgd_accuracy"]):
        assert aa <= p + tol
    assert r["accuracy"][0] == r["clean_accuracy"] == pgd["pgd_accuracy"][0]
    assert 0 < r["accuracy"][1] < r["clean_accuracy"]  # a budget that leaves survivors: every component ran


def test_at_a_large_epsilon_autoattack_reaches_chance(measured):
    r, _ = measured
    big = _check(r, "large-epsilon")
    assert big["epsilon"] == 0.5 and big["passed"] is True
    assert big["accuracy"] <= big["chance"] + R.CHANCE_MARGIN


def test_the_result_names_the_package_the_components_and_their_outcomes(measured):
    r, events = measured
    assert r["attack"] == "autoattack" and r["norm"] == "linf" and r["steps"] == 100
    assert r["package"]["name"] == "torchattacks" and r["package"]["version"] == "3.5.1"
    aa = r["autoattack"]
    assert aa["version"] == "standard" and aa["components"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert aa["settings"]["steps"] == 100 and aa["settings"]["square_queries"] == 5000
    for i, acc in enumerate(r["accuracy"]):
        after = [aa["accuracy_after"][c][i] for c in aa["components"]]
        assert after == sorted(after, reverse=True) and after[-1] == acc  # each runs on the survivors only
    # per-sample outcomes: the per-class recalls, weighted by the class counts, give the accuracy
    counts = r["class_counts"]
    for recall, acc in zip(r["per_class_recall"]["by_epsilon"], r["accuracy"]):
        assert sum(c * (x or 0) for c, x in zip(counts, recall)) / sum(counts) == pytest.approx(acc)
    # the progress bar: one event per batch and component, counting up to its announced total
    ticks = [e for e in events if e.kind == "epoch"]
    assert events[0].kind == "start" and events[-1].kind == "end"
    assert [e.epoch for e in ticks] == list(range(1, events[0].total + 1))
    assert events[0].total == 1 + 4 + 4 + 1 + 1  # eps 0, eps 0.1, eps 0.5 (4 components each), FGSM, PGD


def test_l2_autoattack_keeps_to_its_budget():
    train = load_dataset("digits", "train")
    model = build_model("mlp", train.info, seed=0).eval()
    test = load_dataset("digits", "test").subset(8, seed=0)
    out = R.adversarial_examples(model, test.x, test.y, "autoattack-l2", 3.0)
    assert out["attack"] == "autoattack-l2" and out["success"].all()  # an untrained model at a large budget
    assert (out["norm"] <= 3.0 * (1 + 1e-5)).all() and out["x_adv"].min() >= 0 and out["x_adv"].max() <= 1


def test_a_gradient_masking_model_is_flagged(trained):
    model, data = trained

    # 0.3 breaks the plain model everywhere, so AutoAttack's scale-free APGD-T (targeted DLR) ends it early
    with pytest.warns(R.RobustnessWarning, match="PGD overestimates robustness"):
        r = R.evaluate(Saturated(model), data, "autoattack", [0.0, 0.3])
    check = _check(r, "pgd-vs-autoattack")
    assert check["passed"] is False and check["pgd_accuracy"][1] > r["accuracy"][1] + R.PGD_GAP
    assert any("PGD overestimates" in w for w in r["warnings"])
    assert r["autoattack"]["accuracy_after"]["apgd-ce"][1] > r["accuracy"][1]  # CE found nothing, DLR did


def test_epsilon_zero_is_the_clean_accuracy_without_running_the_attack(trained, monkeypatch):
    model, data = trained

    def refuse(*args, **kwargs):
        raise AssertionError("AutoAttack ran at epsilon 0")

    monkeypatch.setattr(autoattack.AutoAttack, "components", refuse)
    events = []
    r = R.evaluate(model, data, "autoattack", [0.0], checks=False, on_event=events.append)
    with torch.no_grad():
        clean = (model(data.x).argmax(1) == data.y).float().mean().item()
    assert r["accuracy"] == [pytest.approx(clean)] and r["clean_accuracy"] == r["accuracy"][0]
    assert events[0].total == 1
    checked = R.evaluate(model, data, "autoattack", [0.0], on_event=events.append)  # with its checks, still none
    assert checked["accuracy"] == r["accuracy"] and _check(checked, "large-epsilon")["passed"] is None


@pytest.mark.parametrize("attack,kwargs,message", [
    ("autoattack-l1", {}, "norm of 'autoattack-l1' is not supported"),
    ("autoattack-linf", {}, "L-inf ('autoattack') or L2 ('autoattack-l2')"),
    ("autoattack", {"steps": 10}, "iterations are fixed at 100"),
    ("autoattack", {"step_size": 0.01}, "takes no step_size"),
])
def test_bad_input_is_one_clear_message(trained, attack, kwargs, message):
    model, data = trained
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        R.evaluate(model, data, attack, [0.0, 0.1], **kwargs)


def test_an_unsupported_norm_is_refused_by_the_runner_too(trained):
    model, data = trained
    with pytest.raises(ConfigError, match="linf or l2, not 'l1'"):
        autoattack.AutoAttack(model, "l1", 10, data.info.input_shape, torch.device("cpu"))


@pytest.mark.parametrize("attack", ["autoattack", "pgd"])
def test_non_finite_logits_are_a_clear_error_and_the_model_is_restored(trained, attack):
    model, data = trained

    class Broken(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            out = self.m(x)
            return torch.where(torch.arange(len(out))[:, None] % 2 == 0, out, torch.full_like(out, math.nan))

    broken = Broken(model).train()
    with pytest.raises(ModelOutputError, match="not finite .* 20 of 40 samples"):
        R.evaluate(broken, data, attack, [0.0, 0.1])
    assert broken.training and all(p.requires_grad for p in broken.parameters())


def test_stopping_mid_evaluation_restores_the_model_and_the_random_stream(trained):
    model, data = trained
    model.train()
    state = torch.get_rng_state()

    def stop(e):
        if e.kind == "epoch" and e.epoch == 2:  # after APGD-CE at epsilon 0.1
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            R.evaluate(model, data, "autoattack", [0.0, 0.1], on_event=stop)
        assert model.training and all(p.requires_grad for p in model.parameters())
        assert torch.equal(torch.get_rng_state(), state)
    finally:
        model.eval()


def test_stopping_deadwood_eval_keeps_the_record_unchanged(tmp_path, monkeypatch):
    import deadwood.cli.eval as cli_eval
    from deadwood.cli import main

    out = tmp_path / "run"
    run(tiny(method="magnitude", seed=5), out=out)
    before = (out / "record.json").read_bytes()

    def bars(*args, **kwargs):
        def stop(e):
            if e.kind == "epoch" and e.epoch == 2:
                raise KeyboardInterrupt
        return stop

    monkeypatch.setattr(cli_eval, "progress_bars", bars)
    assert main(["eval", "--run", str(out), "--attack", "autoattack", "--samples", "20"]) == 130
    assert (out / "record.json").read_bytes() == before


def _row(method, sparsity, seed, pgd, aa, pgd_same):
    return {"method": method, "sparsity": sparsity, "seed": seed, "one_shot_accuracy": 0.5, "clean_accuracy": 0.9,
            "robust_accuracy": pgd, "time_s": 1.0, "autoattack_accuracy": aa, "autoattack_pgd_accuracy": pgd_same,
            "teacher_autoattack_accuracy": 0.6}


def test_the_benchmark_says_where_the_ordering_and_the_margin_change():
    rows = [_row("deadwooding", 0.9, s, 0.70, 0.50, 0.70) for s in (0, 1)] + \
           [_row("magnitude", 0.9, s, 0.60, 0.55, 0.60) for s in (0, 1)] + \
           [_row("deadwooding", 0.99, s, 0.40, 0.30, 0.40) for s in (0, 1)] + \
           [_row("magnitude", 0.99, s, 0.45, 0.10, 0.20) for s in (0, 1)]  # PGD on all images ranks it first
    result = {"grid": {"epsilon": 0.1}, "rows": rows, "teachers": {},
              "evaluation": {"steps": 10, "samples": None, "attack_samples": 200,
                             "packages": {"autoattack": {"name": "torchattacks", "version": "3.5.1"}}}}
    text = "\n".join(autoattack_lines(result, summarize(rows)))
    assert "| deadwooding | 0.9 | 0.900 ± 0.000 | 0.700 ± 0.000 | 0.700 ± 0.000 | 0.500 ± 0.000 | +0.200 |" in text
    assert ("sparsity 0.9: PGD deadwooding > magnitude; AutoAttack magnitude > deadwooding (the order changes); "
            "Deadwooding's margin under PGD +0.100; Deadwooding's margin under AutoAttack -0.050") in text
    # Both orderings rank the same 200 images: PGD on all of them would put magnitude first at 0.99.
    assert "PGD-10 and AutoAttack on the same 200 images" in text
    assert "sparsity 0.99: PGD deadwooding > magnitude; AutoAttack deadwooding > magnitude (same order)" in text
    assert "torchattacks 3.5.1" in text and json.dumps(rows)  # rows stay JSON-ready


def test_the_benchmark_caches_each_autoattack_evaluation_by_its_settings(tmp_path, monkeypatch):
    from deadwood.bench.attacks import extra_evaluation

    train = load_dataset("digits", "train")
    model = build_model("mlp", train.info, seed=0).eval()
    test, cache = load_dataset("digits", "test"), tmp_path / "attacks.json"
    # epsilon 0.5: APGD-CE breaks every sample, so the later components have nothing to do
    first = extra_evaluation(model, test, "autoattack", 0.5, 10, 0, cache, "runs/x")
    assert first["samples"] == 10 and first["robust_accuracy"] <= first["pgd_accuracy"] + 0.1
    assert first["package"] == {"name": "torchattacks", "version": "3.5.1"}
    assert json.loads(cache.read_text())["runs/x"] == first

    def refuse(*args, **kwargs):
        raise AssertionError("evaluated again")

    with monkeypatch.context() as m:
        m.setattr(R, "evaluate", refuse)
        assert extra_evaluation(model, test, "autoattack", 0.5, 10, 0, cache, "runs/x") == first
    other = extra_evaluation(model, test, "autoattack", 0.5, 12, 0, cache, "runs/x")  # new settings: measured
    assert other["samples"] == 12 and json.loads(cache.read_text())["runs/x"]["samples"] == 12
