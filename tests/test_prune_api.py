"""deadwood.prune: Deadwooding (and every baseline) on a network and data of the user's own."""
import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import deadwood
from deadwood import ConfigError, DeadwoodError, get_method, method_names, prune

QUICK = {"deadwooding.epochs": 2, "hydra.epochs": 1, "harp.epochs": 1, "finetune.epochs": 1, "evaluation.samples": 60,
         "evaluation.epsilons": (0.0, 0.1), "evaluation.steps": 2}
SPARSITY = 0.8


class Net(nn.Module):
    """A small CNN of the kinds the API must take: BatchNorm, a depthwise conv, a residual add."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8 * 16, classes)

    def forward(self, x):
        h = torch.relu(self.bn(self.c1(x)))
        h = h + torch.relu(self.pw(self.dw(h)))
        return self.fc(nn.functional.max_pool2d(h, 2).flatten(1))


@pytest.fixture(scope="module")
def digits():
    train, test = deadwood.load_dataset("digits", "train"), deadwood.load_dataset("digits", "test")
    return (train.x.clone(), train.y.clone()), (test.x.clone(), test.y.clone())


def _fit(model, x, y, steps=40):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    return _fit(Net(), *digits[0])


def _weights(model):
    return {f"{n}.weight": m.weight for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def test_prune_returns_the_users_class_pruned_and_the_record(trained, digits, tmp_path):
    before = copy.deepcopy(trained.state_dict())
    train = TensorDataset(*digits[0])
    test = DataLoader(TensorDataset(*digits[1]), batch_size=100)
    r = prune(trained, train, test, sparsity=SPARSITY, overrides=QUICK, cache_dir=tmp_path)

    assert type(r.model) is Net and type(r.teacher) is Net
    assert not r.model._forward_pre_hooks and not hasattr(r.model, "deadwood_prunable")
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items()), "the input was modified"
    # The teacher is the network as given (teacher.epochs only counts with train_teacher=True).
    assert all(torch.equal(before[k], v) for k, v in r.teacher.state_dict().items())

    weights = _weights(r.model)
    assert set(r.mask) == set(weights) == set(r.record.layer_sparsity)
    total = sum(w.numel() for w in weights.values())
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert abs(zeros - round(SPARSITY * total)) <= 1
    for n, w in weights.items():
        assert (w[~r.mask[n]] == 0).all()
    assert r.record.global_sparsity == pytest.approx(zeros / total)

    dual = [h for h in r.record.history if h["phase"] == "dual"]
    assert len(dual) == 2 and set(dual[0]["lambdas"]) == {f"rep:{n}" for n in weights} | {"kd", "rob"}
    assert 0 <= r.record.clean_accuracy <= 1 and r.record.robust_accuracy(0.1) is not None
    # Plain torch: the returned network computes what the cached run's model computes.
    x = digits[1][0][:50]
    with torch.no_grad():
        assert torch.equal(r.model.eval()(x), deadwood.load_run(r.path).model(x))


def test_the_same_request_again_is_a_cache_hit(trained, digits, tmp_path):
    first = prune(trained, digits[0], digits[1], method="magnitude", sparsity=0.5, overrides=QUICK,
                  cache_dir=tmp_path)
    events = []
    again = prune(trained, digits[0], digits[1], method="magnitude", sparsity=0.5, overrides=QUICK,
                  cache_dir=tmp_path, on_event=events.append)
    assert ("cached", "run") in [(e.kind, e.stage) for e in events]
    assert again.path == first.path
    other = copy.deepcopy(trained)
    with torch.no_grad():
        other.fc.bias += 1.0  # other weights: another teacher, another run
    third = prune(other, digits[0], digits[1], method="magnitude", sparsity=0.5, overrides=QUICK, cache_dir=tmp_path)
    assert third.path != first.path


@pytest.mark.parametrize("name", method_names())
def test_every_method_works_through_the_api(name, trained, digits, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "api-methods"  # one teacher for all of them
    r = prune(trained, digits[0], digits[1], method=name, sparsity=SPARSITY, overrides=QUICK, cache_dir=cache)
    weights = _weights(r.model)
    total = sum(w.numel() for w in weights.values())
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    target = round(SPARSITY * total) if get_method(name).prunes else 0
    assert abs(zeros - target) <= 1, f"{name}: {zeros} zeros, expected {target}"
    assert r.record.config["method"] == name and type(r.model) is Net


def test_prune_layers_choose_what_is_cut(trained, digits, tmp_path):
    r = prune(trained, digits[0], digits[1], method="magnitude", sparsity=0.5, overrides=QUICK, cache_dir=tmp_path,
              prune_layers={"exclude": ["fc"]})
    assert set(r.record.layer_sparsity) == {"c1.weight", "dw.weight", "pw.weight"}
    assert bool((r.model.fc.weight != 0).all())  # never cut (fine-tuning still trains it)
    assert r.record.global_sparsity == pytest.approx(0.5, abs=0.01)  # of the chosen layers
    r2 = prune(trained, digits[0], digits[1], method="magnitude", sparsity=0.5, overrides=QUICK, cache_dir=tmp_path,
               prune_layers=["c1", "p*"])
    assert set(r2.record.layer_sparsity) == {"c1.weight", "pw.weight"}


def _cache_is_empty(path):
    return not path.exists() or not any(path.rglob("*.json"))


class Dicts(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"image": self.x[i], "label": self.y[i]}


class NoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(64, 10))

    def forward(self, x):
        return x.flatten(1) @ self.w


BAD = {
    "no prunable layer": (lambda m, tr, te: (NoLayers(), tr, te), "no prunable layer"),
    "pattern matches nothing": (lambda m, tr, te: (m, tr, te), "matches no prunable layer"),
    "inputs outside [0, 1]": (lambda m, tr, te: (m, (tr[0] * 255, tr[1]), te), "not in [0, 1]"),
    "labels beyond the classes": (lambda m, tr, te: (m, tr, (te[0], te[1] + 10)), "must be 0..9"),
    "negative labels": (lambda m, tr, te: (m, (tr[0], tr[1] - 1), te), "run from -1 to 8"),
    "output size is not the class count": (lambda m, tr, te: (Net(classes=5), tr, te), "5 outputs but the data has 10"),
    "a loader of dicts": (lambda m, tr, te: (m, DataLoader(Dicts(*tr), batch_size=64), te), "yields dicts"),
    "three-tuples": (lambda m, tr, te: (m, TensorDataset(tr[0], tr[1], tr[1]), te), "3-tuples"),
    "not a module": (lambda m, tr, te: (lambda x: x, tr, te), "must be a torch.nn.Module"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_clear_error_and_writes_nothing(case, trained, digits, tmp_path):
    make, words = BAD[case]
    model, train, test = make(trained, digits[0], digits[1])
    layers = {"include": ["nothing*"]} if case == "pattern matches nothing" else None
    cache = tmp_path / "cache"
    with pytest.raises(DeadwoodError, match=words.replace("[", r"\[").replace("]", r"\]")):
        prune(model, train, test, sparsity=0.5, overrides=QUICK, cache_dir=cache, prune_layers=layers)
    assert _cache_is_empty(cache)


def test_mean_and_std_normalise_for_a_model_that_expects_normalised_inputs(digits, tmp_path):
    mean, std = (0.3,), (0.38,)
    x, y = digits[0]
    torch.manual_seed(1)
    net = _fit(Net(), (x - 0.3) / 0.38, y)
    r = prune(net, digits[0], digits[1], method="magnitude", sparsity=0.5, overrides=QUICK, cache_dir=tmp_path,
              mean=mean, std=std)
    xt = (digits[1][0] - 0.3) / 0.38
    with torch.no_grad():  # the returned networks expect what the given one expects: normalised inputs
        assert torch.equal(r.teacher(xt), net(xt))
        acc = float((r.teacher(xt).argmax(1) == digits[1][1]).float().mean())
    assert r.record.teacher["clean_accuracy"] == pytest.approx(acc, abs=0.2)  # on 60 samples, not 360
    with pytest.raises(ConfigError, match="both mean and std"):
        prune(net, digits[0], digits[1], mean=mean, cache_dir=tmp_path)


def test_train_teacher_trains_it_first(digits, tmp_path):
    torch.manual_seed(2)
    fresh = Net().eval()
    with pytest.raises(ConfigError, match="train_teacher=True"):
        prune(fresh, digits[0], digits[1], overrides={**QUICK, "teacher.epochs": 1}, cache_dir=tmp_path)
    r = prune(fresh, digits[0], digits[1], method="magnitude", sparsity=0.5, overrides={**QUICK, "teacher.epochs": 1},
              cache_dir=tmp_path, train_teacher=True)
    assert any(h["phase"] == "teacher" for h in r.record.history)
    assert not torch.equal(r.teacher.fc.weight, fresh.fc.weight)


def test_the_budget_protocol_reaches_the_run_and_its_record(trained, digits, tmp_path):
    # QUICK: a solve of 2 epochs and a fine-tune of 1; digits: 1437 training images, 23 batches of 64
    gmp = prune(trained, digits[0], digits[1], method="gmp", sparsity=SPARSITY, overrides=QUICK, cache_dir=tmp_path)
    assert gmp.record.config["budget"] == "matched"
    assert gmp.record.train_epochs == {"protocol": "matched", "total": 3, "by_stage": {"gmp": 2, "finetune": 1},
                                       "steps": {"gmp": 46, "finetune": 23}}
    assert [h["phase"] for h in gmp.record.history].count("finetune") == 1
    old = prune(trained, digits[0], digits[1], method="magnitude", sparsity=SPARSITY, budget="finetune",
                overrides=QUICK, cache_dir=tmp_path)
    assert old.record.train_epochs == {"protocol": "finetune", "total": 1, "by_stage": {"finetune": 1},
                                       "steps": {"finetune": 23}}
    with pytest.raises(ConfigError, match="unknown budget 'equal'"):
        prune(trained, digits[0], digits[1], budget="equal", overrides=QUICK, cache_dir=tmp_path)


def test_a_gmp_schedule_the_data_cannot_fill_writes_nothing(trained, digits, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ConfigError, match="gmp cannot reach sparsity 0.8: its stage has 46 optimiser steps"):
        prune(trained, digits[0], digits[1], method="gmp", sparsity=SPARSITY,
              overrides={**QUICK, "gmp.frequency": 47}, cache_dir=cache)
    assert _cache_is_empty(cache)


class Constant(nn.Module):
    """A network whose output does not depend on its input or its weights: it always answers class 0."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(64, classes)
        self.register_buffer("logits", torch.arange(classes, 0, -1, dtype=torch.float32))

    def forward(self, x):
        return self.fc(x.flatten(1)) * 0 + self.logits


def test_a_model_at_chance_is_named_in_the_records_warnings(trained, digits, tmp_path):
    quick = {**QUICK, "evaluation.epsilons": (0.0,)}
    stuck = prune(Constant().eval(), digits[0], digits[1], method="magnitude", sparsity=0.5, overrides=quick,
                  cache_dir=tmp_path)
    assert stuck.record.clean_accuracy < 0.2  # one class of ten
    assert [w.split("'")[0] for w in stuck.record.warnings] == ["the dense teacher", "the pruned model"]
    assert all("chance level (1/10 = 10.0%" in w for w in stuck.record.warnings)
    fine = prune(trained, digits[0], digits[1], method="magnitude", sparsity=0.5, overrides=quick, cache_dir=tmp_path)
    assert fine.record.clean_accuracy > 0.5 and fine.record.warnings == []


def test_the_chance_margin_is_two_standard_errors_of_a_guesser_and_at_least_two_points():
    from deadwood.robustness.checks import chance_margin, chance_warning

    assert chance_margin(3, 300) == pytest.approx(2 * (1 / 3 * 2 / 3 / 300) ** 0.5)  # 5.4 points
    assert chance_margin(10, 100_000) == 0.02
    assert chance_warning("m", 0.38, 3, 300) is not None and chance_warning("m", 0.39, 3, 300) is None
    assert "below chance" in chance_warning("m", 0.0, 3, 300)
    assert chance_warning("m", 0.5, 1, 300) is None and chance_warning("m", None, 3, 300) is None
