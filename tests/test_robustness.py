"""The foolbox evaluation: its numbers against independent ones, its sanity checks, its bad-input messages."""
import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deadwood import ConfigError, load_dataset, build_model, run
from deadwood import robustness as R
from deadwood.train import natural_step, run_epochs
from conftest import Saturated, tiny

EPS = [0.0, 0.05, 0.1, 0.2]


@pytest.fixture(scope="module")
def trained():
    """A digits MLP trained naturally (about a second) and 200 test samples."""
    train = load_dataset("digits", "train")
    model = build_model("mlp", train.info, seed=0)
    run_epochs(model, train, natural_step(model), stage="teacher", epochs=6, lr=1e-3, batch_size=64, seed=0)
    return model.eval(), load_dataset("digits", "test").subset(200, seed=1)


def _correct_count(model, x, y):
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum())


def plain_pgd(model, x, y, eps, steps, step_size, gen):
    """Madry's L-inf PGD written out here, independently of foolbox and of deadwood.robustness.training."""
    delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + step_size * g.sign()
        adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1)
    return adv


def test_accuracy_at_epsilon_zero_is_the_clean_accuracy_exactly(trained):
    model, data = trained
    r = R.evaluate(model, data, "pgd", [0.1, 0.05], steps=5)
    assert r["epsilons"][0] == 0.0 and r["epsilons"] == [0.0, 0.05, 0.1]
    clean = _correct_count(model, data.x, data.y) / len(data)
    assert r["accuracy"][0] == clean == r["clean_accuracy"]
    assert r["checks"][0] == {"name": "epsilon-zero", "passed": True,
                              "message": "accuracy at epsilon 0 equals the clean accuracy"}


@pytest.mark.parametrize("attack", ["pgd", "fgsm", "deepfool", "fmn", "pgd-l2"])
def test_accuracy_never_rises_with_epsilon_and_the_checks_pass(trained, attack):
    model, data = trained
    eps = [0.0, 0.5, 1.0, 2.0] if attack.endswith("l2") else EPS
    with warnings.catch_warnings():
        warnings.simplefilter("error", R.RobustnessWarning)  # a healthy model raises none
        r = R.evaluate(model, data, attack, eps)
    acc = r["accuracy"]
    assert all(b <= a for a, b in zip(acc, acc[1:])), acc
    assert acc[-1] < acc[0] - 0.3  # the attack does something
    assert [c["name"] for c in r["checks"]] == ["epsilon-zero", "monotone", "stronger-than-fgsm", "large-epsilon"]
    assert all(c["passed"] in (True, None) for c in r["checks"]) and r["warnings"] == []
    big = r["checks"][-1]
    assert big["accuracy"] <= 0.1 + R.CHANCE_MARGIN
    json.dumps(r, allow_nan=False)  # plain data, as the record stores it


def test_foolbox_pgd_agrees_with_an_independent_plain_pgd(trained):
    model, data = trained
    steps = 10
    r = R.evaluate(model, data, "pgd", [0.05, 0.1], steps=steps)
    gen = torch.Generator().manual_seed(123)
    for eps in (0.05, 0.1):
        adv = plain_pgd(model, data.x, data.y, eps, steps, 2.5 * eps / steps, gen)
        mine = _correct_count(model, adv, data.y) / len(data)
        theirs = r["accuracy"][r["epsilons"].index(eps)]
        assert abs(mine - theirs) <= 0.03, (eps, mine, theirs)
        assert theirs < r["clean_accuracy"] - 0.05


def test_per_class_recall_weighted_by_counts_gives_the_accuracy(trained):
    model, data = trained
    r = R.evaluate(model, data, "pgd", EPS, steps=3, checks=False)
    counts = r["class_counts"]
    assert sum(counts) == len(data) == r["samples"]
    assert counts == torch.bincount(data.y, minlength=10).tolist()
    rows = [r["per_class_recall"]["clean"]] + r["per_class_recall"]["by_epsilon"]
    for recall, acc in zip(rows, [r["clean_accuracy"]] + r["accuracy"]):
        assert all(0 <= v <= 1 for v in recall)
        assert math.isclose(sum(v * n for v, n in zip(recall, counts)) / len(data), acc, abs_tol=1e-12)


def test_per_class_recall_of_an_absent_class_is_none():
    recall = R.per_class_recall(torch.tensor([True, False, True]), torch.tensor([0, 0, 2]), 3)
    assert recall == [0.5, None, 1.0]


def test_security_curve_matches_a_fixed_epsilon_attack(trained):
    model, data = trained
    sc = R.security_curve(model, data)
    assert sc["attack"] == "fmn" and sc["samples"] == len(data) == len(sc["norms"]) == len(sc["labels"])
    assert sc["epsilons"][0] == 0.0 and sc["accuracy"][0] == sc["clean_accuracy"]
    assert all(b <= a for a, b in zip(sc["accuracy"], sc["accuracy"][1:]))
    assert sc["found"] == 1.0  # a natural MLP has an adversarial for every sample
    pgd = R.evaluate(model, data, "pgd", [0.05, 0.1], steps=40, checks=False)
    at = R.curve_at(sc["norms"], [0.05, 0.1])
    for a, b in zip(at, pgd["accuracy"][1:]):
        assert abs(a - b) <= 0.04, (at, pgd["accuracy"])
    # a sample is broken at exactly its own norm, and robust just below it
    v = next(n for n in sc["norms"] if n)
    assert R.curve_at([v], [v * 0.999, v]) == [1.0, 0.0]


def test_minimum_norm_attacks_report_each_samples_norm(trained):
    model, data = trained
    r = R.evaluate(model, data, "deepfool", EPS, checks=False)
    norms = r["norms"]
    assert len(norms) == len(data)
    with torch.no_grad():
        wrong = (model(data.x).argmax(1) != data.y).tolist()
    assert all((n == 0) == w for n, w in zip(norms, wrong))
    # clipping a perturbation that is already within epsilon leaves it adversarial
    for eps, acc in zip(r["epsilons"], r["accuracy"]):
        assert acc <= R.curve_at(norms, [eps])[0] + 1e-12
    assert R.evaluate(model, data, "pgd", EPS, steps=2, checks=False)["norms"] is None


def test_a_saturated_model_is_flagged_as_masking_gradients(trained):
    model, data = trained

    with pytest.warns(R.RobustnessWarning, match="gradients are probably masked"):
        r = R.evaluate(Saturated(model), data, "pgd", EPS, steps=5)
    failed = {c["name"] for c in r["checks"] if c["passed"] is False}
    assert "large-epsilon" in failed and r["warnings"]


def test_a_nondeterministic_model_fails_the_epsilon_zero_check(trained):
    model, data = trained

    class Noisy(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x + 0.3 * torch.randn_like(x))

    with pytest.warns(R.RobustnessWarning, match="not deterministic"):
        r = R.evaluate(Noisy(model), data, "fgsm", [0.1])
    assert r["checks"][0]["passed"] is False


def test_same_seed_same_samples_same_numbers_independent_of_the_sweep(trained):
    model, data = trained
    a = R.evaluate(model, data, "pgd", [0.05, 0.1, 0.2], steps=3, samples=150, seed=4, checks=False)
    b = R.evaluate(model, data, "pgd", [0.1], steps=3, samples=150, seed=4, checks=False)
    assert a["accuracy"][a["epsilons"].index(0.1)] == b["accuracy"][1]
    assert a["samples"] == 150 and a["seed"] == 4 and a["steps"] == 3
    pruned = build_model("mlp", data.info, seed=1).eval()
    pair = R.evaluate_pair(model, pruned, data, "pgd", [0.1], steps=3, samples=150, seed=4, checks=False)
    assert pair["teacher"]["accuracy"] == b["accuracy"]
    assert pair["teacher"]["class_counts"] == pair["pruned"]["class_counts"]
    assert pair["pruned"]["samples"] == pair["teacher"]["samples"] == 150


def test_evaluation_restores_the_model_and_the_random_stream(trained):
    model, data = trained
    model.train()
    for p in model.parameters():
        p.grad = None  # left over from training
    flags = [p.requires_grad for p in model.parameters()]
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    R.evaluate(model, data, "pgd", [0.1], steps=2, samples=50)
    assert torch.equal(torch.rand(3), expected)
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())  # no weight gradient was computed
    model.eval()


def test_adversarial_examples_for_a_batch(trained):
    model, data = trained
    x, y = data.x[:8], data.y[:8]
    ex = R.adversarial_examples(model, x, y, "pgd", 0.1, steps=5, seed=3)
    assert ex["x_adv"].shape == x.shape and ex["x_adv"].min() >= 0 and ex["x_adv"].max() <= 1
    assert float(ex["norm"].max()) <= 0.1 + 1e-6
    with torch.no_grad():
        assert torch.equal(ex["pred_adv"], model(ex["x_adv"]).argmax(1))
    assert torch.equal(ex["success"], ex["pred_adv"] != y)
    again = R.adversarial_examples(model, x, y, "pgd", 0.1, steps=5, seed=3)
    assert torch.equal(again["x_adv"], ex["x_adv"])  # same seed, same random start
    minimal = R.adversarial_examples(model, x, y, "fmn", None)
    correct = ex["pred_clean"] == y
    assert bool(minimal["success"][correct].all()) and float(minimal["norm"][correct].min()) > 0


BAD = [
    (dict(epsilons=[-0.1]), "every epsilon must be a finite number >= 0, got -0.1"),
    (dict(epsilons=[float("nan")]), "every epsilon must be a finite number >= 0, got nan"),
    (dict(epsilons=["0.1"]), "every epsilon must be a finite number >= 0, got '0.1'"),
    (dict(epsilons="0.1"), "epsilons must be a list of numbers >= 0"),
    (dict(attack="cw"), "unknown attack 'cw'; choose one of: fgsm, pgd, pgd-l2, deepfool, deepfool-l2, fmn"),
    (dict(steps=0), "steps must be a whole number > 0, got 0"),
    (dict(attack="fmn", step_size=0.01), "step_size applies to pgd and pgd-l2 only"),
    (dict(samples=0), "samples must be a whole number > 0, got 0"),
]


@pytest.mark.parametrize("kwargs,message", BAD)
def test_bad_input_is_one_clear_message(trained, kwargs, message):
    model, data = trained
    with pytest.raises(ConfigError) as e:
        R.evaluate(model, data, **kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_security_curve_needs_a_minimum_norm_attack(trained):
    with pytest.raises(ConfigError, match="needs a minimum-norm attack"):
        R.security_curve(*trained, attack="pgd")


def test_the_run_record_carries_the_foolbox_evaluation():
    rec = run(tiny(method="magnitude", seed=11)).record
    rob, teacher = rec.robustness, rec.teacher["robustness"]
    assert rob["attack"] == "pgd" and rob["steps"] == 3 and rob["samples"] == 120 and rob["seed"] == 11
    assert rob["accuracy"][0] == rec.clean_accuracy and teacher["accuracy"][0] == rec.teacher["clean_accuracy"]
    assert [c["name"] for c in rob["checks"]] == ["epsilon-zero", "monotone", "stronger-than-fgsm", "large-epsilon"]
    assert len(rob["per_class_recall"]["by_epsilon"]) == len(rob["epsilons"])
    # the teacher and the pruned model were judged on the same samples
    assert teacher["class_counts"] == rob["class_counts"] and teacher["seed"] == rob["seed"]


def test_import_backend_imports_the_library_behind_the_attack_and_refuses_unknown_names():
    import subprocess
    import sys

    code = ("import sys, deadwood.robustness as R; before = 'foolbox' in sys.modules; R.import_backend('pgd'); "
            "print(before, 'foolbox' in sys.modules, 'torchattacks' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True", "False"], out.stderr
    with pytest.raises(ConfigError, match="unknown attack"):
        R.import_backend("pgdd")


def test_a_waiting_app_worker_has_imported_foolbox_and_torchs_optimiser_stack_before_its_first_run():
    """The worker's preparation takes foolbox's import out of a fresh default run's evaluation, and
    the import the first optimiser brings (torch._dynamo) out of its teacher's first epoch."""
    import subprocess
    import sys

    code = ("import sys; from app.jobs import worker; want = ('foolbox', 'torch._dynamo'); "
            "before = [m in sys.modules for m in want]; worker._prepare_default(); "
            "print(*before, *[m in sys.modules for m in want])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.stdout.split() == ["False", "False", "True", "True"], out.stderr


def test_the_epsilon_zero_check_compares_sample_by_sample_not_by_count(trained):
    """A model that gets as many right on its second look at the samples, but other ones, is flagged."""
    _, data = trained
    from deadwood.data.datasets import ArrayDataset

    pair = ArrayDataset(data.x[:2], torch.tensor([0, 1]), data.info, "test")
    seen = set()

    class SecondLook(nn.Module):
        """Class 0 for an input it has not seen, class 1 for one it has: the clean pass gets sample 0
        right, the pass at epsilon 0 (the same inputs) sample 1: one right each time."""

        def forward(self, x):
            keys = [round(float(v), 4) for v in x.flatten(1).sum(1)]
            out = torch.zeros(len(x), data.info.num_classes) + 0 * x.flatten(1).sum(1, keepdim=True)
            for i, k in enumerate(keys):
                out[i, 1 if k in seen else 0] = 1.0
            seen.update(keys)
            return out

    r = R.evaluate(SecondLook(), pair, "fgsm", [0.1], warn=False)
    assert r["clean_accuracy"] == 0.5 and r["accuracy"][0] == 0.5
    assert r["checks"][0]["passed"] is False and "not deterministic" in r["checks"][0]["message"]


def test_pgd_equals_plain_pgd_from_the_same_random_starts_exactly(trained):
    """Known answer, sample by sample: Madry's PGD written out in plain torch, its random start drawn
    from the evaluation's documented per-batch seed, leaves exactly the same samples correct."""
    model, data = trained
    steps, seed, size = 10, 3, 64
    r = R.evaluate(model, data, "pgd", [0.05, 0.1], steps=steps, seed=seed, batch_size=size, checks=False)
    for eps in (0.05, 0.1):
        correct = []
        for b, i in enumerate(range(0, len(data), size)):
            x, y = data.x[i:i + size], data.y[i:i + size]
            gen = torch.Generator().manual_seed((seed * 1_000_003 + b) % 2 ** 63)
            adv = (x + (torch.rand(x.shape, generator=gen) * (2 * eps) - eps)).clamp(0, 1)
            for _ in range(steps):
                adv.requires_grad_(True)
                loss = F.cross_entropy(model(adv), y, reduction="none").sum()
                (g,) = torch.autograd.grad(loss, adv)
                adv = adv.detach() + (2.5 / steps) * eps * g.sign()
                adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1)
            adv = x + (adv - x).clamp(-eps, eps)  # the evaluation clips every result to its budget
            with torch.no_grad():
                correct.append(model(adv).argmax(1) == y)
        correct = torch.cat(correct)
        k = r["epsilons"].index(eps)
        assert r["accuracy"][k] == int(correct.sum()) / len(data), eps
        assert r["per_class_recall"]["by_epsilon"][k] == R.per_class_recall(correct, data.y, 10)
    assert r["accuracy"][-1] < r["clean_accuracy"] - 0.05  # the attack did something


def test_fmn_equals_foolbox_fmn_called_directly(trained):
    """Known answer: the minimum-norm plumbing (one run per batch, clipped to each epsilon, each
    sample's norm) against foolbox's FMN called here by hand on the same batches."""
    import foolbox

    model, data = trained
    eps, size = [0.0, 0.05, 0.1], 64
    torch.manual_seed(5)
    r = R.evaluate(model, data, "fmn", eps, batch_size=size, checks=False)
    torch.manual_seed(5)
    fmodel, attack = foolbox.PyTorchModel(model, bounds=(0, 1)), foolbox.attacks.LInfFMNAttack(steps=100)
    correct, norms = [], []
    for i in range(0, len(data), size):
        x, y = data.x[i:i + size], data.y[i:i + size]
        raw, _, success = attack(fmodel, x, y, epsilons=[*eps, None])
        with torch.no_grad():
            ok = (model(x).argmax(1) == y).tolist()
        dist = (raw[-1] - x).flatten(1).abs().amax(1).tolist()
        norms += [(round(d, 7) if found else None) if o else 0.0
                  for d, found, o in zip(dist, success[-1].tolist(), ok)]
        correct.append(~success[:-1])
    correct = torch.cat(correct, dim=1)
    assert r["accuracy"] == [int(c.sum()) / len(data) for c in correct]
    assert r["norms"] == norms and all(n is not None for n in norms)
    assert r["accuracy"][-1] < r["clean_accuracy"] - 0.05


def test_foolbox_and_torchattacks_are_each_imported_in_one_module():
    """Each library is wrapped in one place: no other engine or app module imports it."""
    import ast
    from pathlib import Path

    import deadwood

    root = Path(deadwood.__file__).resolve().parent.parent
    found = {"foolbox": set(), "torchattacks": set()}
    for path in [*root.joinpath("deadwood").rglob("*.py"), *root.joinpath("app").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.split(".")[0] in found:
                    found[name.split(".")[0]].add(path.relative_to(root).as_posix())
    assert found == {"foolbox": {"deadwood/robustness/foolbox_backend.py"},
                     "torchattacks": {"deadwood/robustness/autoattack.py"}}


def test_the_package_docstring_states_every_public_signature_exactly():
    """The signatures listed in ``deadwood.robustness``'s docstring are the code's (annotations left out)."""
    import inspect
    import re

    doc = R.__doc__.split("::", 1)[1]
    listed, lines = {}, doc.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"    (\w+)\(", line)
        if not m:
            continue
        text = line.strip()
        while text.count("(") > text.count(")"):
            i += 1
            text += " " + lines[i].strip()
        listed[m.group(1)] = text
    assert set(listed) == {"evaluate", "evaluate_pair", "adversarial_examples", "security_curve", "curve_at",
                           "check_epsilons", "per_class_recall", "pgd_vs_autoattack", "package_info",
                           "import_backend"}
    for name, text in listed.items():
        sig = inspect.signature(getattr(R, name))
        bare = sig.replace(parameters=[p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()],
                           return_annotation=inspect.Signature.empty)
        assert text == f"{name}{bare} -> {sig.return_annotation}", name
