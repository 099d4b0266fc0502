"""HARP (Zhao & Wressnegger, ICLR 2023): scores and per-layer rates learned together on the
adversarial loss, the budget as a rising penalty, and a final mask that meets κ exactly."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import deadwood
from deadwood import ConfigError, HarpConfig, LayersConfig, build_model, dataset_info, get_method
from deadwood.pruning.masks import prunable
from deadwood.methods import PruneContext
from deadwood.methods.budget import own_stage_epochs
from deadwood.methods.harp import (HarpModel, allocate, budget_term, cosine_lr, keep_rate, layer_keep,
                                   rate_parameter)
from deadwood.pipeline import Cache, check_method, get_teacher, load_data
from conftest import tiny

DIGITS = dataset_info("digits")


def _model(name="mlp", seed=0):
    return build_model(name, DIGITS, seed=seed)


def _frozen(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _spread_rates(net, seed=0):
    """Give the layers different keep rates, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for r in net.rates:
            r.add_(torch.randn((), generator=g) * 1.5)


# --------------------------------------------------------------------------- initialisation

@pytest.mark.parametrize("name", ["mlp", "convnet"])
def test_scores_and_rates_start_as_the_reference_starts_them(name):
    """Scores √(6/fan_in)·w/max|w|; every rate at the budget (the uniform strategy) through the
    reference's inverse of k = k_min + (1 - k_min)·sigmoid(r), k_min = alpha·(1 - κ)."""
    model = _model(name)
    net = HarpModel(model, 0.9, alpha=0.1)
    for (n, w), s in zip(prunable(model).items(), net.scores):
        fan_in = w.shape[1] * (w[0, 0].numel() if w.dim() > 2 else 1)
        torch.testing.assert_close(s.detach(), math.sqrt(6 / fan_in) * w / w.abs().max())
    k_min = 0.1 * 0.1
    assert net.k_min == pytest.approx(k_min)
    for r in net.rates:
        r = r.detach()
        inv = (0.1 - k_min) / (1 - k_min)
        assert float(r) == pytest.approx(math.log(inv / (1 - inv)), rel=1e-6)
        assert float(keep_rate(r, k_min)) == pytest.approx(0.1, rel=1e-6)
    # |s| orders a layer as |w| does: before training the forward pass keeps each layer's top |w|.
    for (n, w), m, k in zip(prunable(model).items(), _training_masks(net), net.keep_rates()):
        keep = layer_keep(float(k.detach()), w.numel())  # float32 k: ±1 of 0.1·n, as in the reference
        assert abs(keep - 0.1 * w.numel()) <= 1
        top = torch.zeros(w.numel())
        top[torch.topk(w.abs().reshape(-1), keep).indices] = 1
        assert int(m.sum()) == keep and torch.equal(m.reshape(-1), top), n


def test_the_rate_inverse_is_clipped_as_the_reference_clips_it():
    """At κ = 0 the inverse rate would be 1 (logit +inf): the reference clips it to 0.99."""
    assert rate_parameter(1.0, 0.1) == pytest.approx(math.log(0.99 / 0.01))
    assert float(keep_rate(torch.tensor(rate_parameter(0.3, 0.03)), 0.03)) == pytest.approx(0.3, rel=1e-6)


# --------------------------------------------------------------------------- gradients and the budget

def test_gradients_reach_scores_and_rates_straight_through():
    """d/ds = sign(s)·w·g and d/dr = Σ(w·g)·dk/dr, with g the loss gradient in the effective
    weights w·m; the frozen weights get none."""
    model = _frozen(_model())
    net = HarpModel(model, 0.8, alpha=0.1)
    _spread_rates(net)
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    F.cross_entropy(net(x), y).backward()

    mask = {n: m.float() for n, m in zip(net.names, _training_masks(net))}
    effective = {n: (w * mask[n]).clone().requires_grad_(True) for n, w in prunable(model).items()}
    out = torch.func.functional_call(model, effective, (x,))
    grads = torch.autograd.grad(F.cross_entropy(out, y), list(effective.values()))
    for (n, w), g, s, r in zip(prunable(model).items(), grads, net.scores, net.rates):
        torch.testing.assert_close(s.grad, torch.sign(s.detach()) * w * g)
        sig = torch.sigmoid(r.detach())
        torch.testing.assert_close(r.grad, (w * g).sum() * (1 - net.k_min) * sig * (1 - sig))
        assert s.grad.abs().sum() > 0 and r.grad != 0, n
        assert w.grad is None


def _training_masks(net):
    """The masks the forward pass uses: top n - ⌊(1 - k) n⌋ of |s|."""
    out = []
    for s, k in zip(net.scores, net.keep_rates()):
        m = torch.zeros(s.numel())
        m[torch.topk(s.detach().abs().reshape(-1), layer_keep(float(k.detach()), s.numel())).indices] = 1
        out.append(m.view_as(s))
    return out


def test_the_budget_term_rises_when_the_kept_weights_exceed_the_budget():
    assert float(budget_term(torch.tensor(0.05), 0.05)) == 0
    assert float(budget_term(torch.tensor(0.03), 0.05)) == 0  # under the budget: no penalty
    assert float(budget_term(torch.tensor(0.06), 0.05)) == pytest.approx(0.2)
    assert float(budget_term(torch.tensor(0.10), 0.05)) == pytest.approx(1.0)

    net = HarpModel(_frozen(_model()), 0.95, alpha=0.1)
    assert float(net.budget().detach()) == pytest.approx(0, abs=1e-6)  # starts at the budget
    seen = []
    for bump in (0.5, 1.0, 2.0):
        with torch.no_grad():
            for r in net.rates:
                r.fill_(rate_parameter(0.05, net.k_min) + bump)
        seen.append(float(net.budget().detach()))
    assert 0 < seen[0] < seen[1] < seen[2]
    net.budget().backward()
    assert all(float(r.grad) > 0 for r in net.rates)  # descending it lowers every rate


# --------------------------------------------------------------------------- κ exactly

@pytest.mark.parametrize("name", ["mlp", "convnet"])
@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.95, 0.99, 0.995])
def test_the_final_mask_meets_kappa_exactly(name, sparsity):
    model = _model(name)
    total = sum(w.numel() for w in prunable(model).values())
    for seed in range(3):
        net = HarpModel(model, sparsity, alpha=0.1)
        _spread_rates(net, seed)
        mask = net.mask(min_keep=8)
        kept = sum(int(m.sum()) for m in mask.values())
        assert kept == total - round(sparsity * total), (seed, kept)
        assert all(int(m.sum()) >= min(8, m.numel()) for m in mask.values())  # the collapse guard
        again = net.mask(min_keep=8)
        assert all(torch.equal(mask[n], again[n]) for n in mask)  # deterministic


def test_allocation_scales_the_learned_split_rounds_it_and_guards_collapse():
    sizes = {"a": 100, "b": 100, "c": 10}
    counts, guarded = allocate({"a": 30.0, "b": 10.0, "c": 0.001}, sizes, keep=20, min_keep=4)
    assert sum(counts.values()) == 20 and counts["c"] == 4 and guarded == {"c": 4}
    assert counts["a"] == 12 and counts["b"] == 4  # 3:1 of what is left, rounded
    # Ties in the remainders go to the earlier layer; a layer never exceeds its size.
    counts, _ = allocate({"a": 1.0, "b": 1.0, "c": 1.0}, sizes, keep=31, min_keep=0)
    assert counts == {"a": 11, "b": 10, "c": 10}
    counts, _ = allocate({"a": 1.0, "b": 1.0, "c": 50.0}, sizes, keep=110, min_keep=0)
    assert counts["c"] == 10 and counts["a"] + counts["b"] == 100
    with pytest.raises(ConfigError, match="min_keep"):
        allocate({"a": 1.0, "b": 1.0, "c": 1.0}, sizes, keep=5, min_keep=4)


def test_the_schedule_is_the_references_cosine():
    lrs = [cosine_lr(0.1, e, 20) for e in range(20)]
    assert lrs[1] == pytest.approx(0.1) and lrs[0] == pytest.approx(lrs[2])  # its index starts one early
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:]))


# --------------------------------------------------------------------------- the method

@pytest.fixture(scope="module")
def digits_teacher():
    config = tiny(method="harp", sparsity=0.95)
    device = torch.device("cpu")
    train, test = load_data(config, device)
    teacher, _ = get_teacher(config, train, test, device, Cache())
    return train, test, teacher


def test_harp_learns_rates_per_layer_and_keeps_the_weights(digits_teacher):
    train, test, teacher = digits_teacher
    config = tiny(method="harp", sparsity=0.95, harp=HarpConfig(pgd_steps=3))
    result = get_method("harp").prune(PruneContext(teacher, config, train, test, torch.device("cpu")))
    entries = result.history
    # harp.epochs None: the solve's epochs.
    assert [h["phase"] for h in entries] == ["harp"] * own_stage_epochs(config) == ["harp"] * config.deadwooding.epochs
    start = 0.05
    rates = result.info["rates"]
    assert max(abs(k - start) for k in rates.values()) > 1e-3, "the rates did not move"
    assert max(rates.values()) - min(rates.values()) > 1e-3, f"the rates moved together: {rates}"
    assert entries[-1]["rates"] == rates
    # The budget penalty grows by gamma each epoch until the budget is met, then stays.
    gammas = [h["gamma"] for h in entries]
    met = result.info["budget_met_after_epoch"]
    for e, g in enumerate(gammas):
        expected = (e + 1) * config.harp.gamma if met is None or e < met else gammas[met - 1]
        assert g == pytest.approx(expected)
    # Weights stay the teacher's; the mask meets κ exactly with the per-layer split reported.
    total = sum(w.numel() for w in prunable(teacher).values())
    assert sum(int(m.sum()) for m in result.mask.values()) == total - round(0.95 * total)
    assert {n: int(m.sum()) for n, m in result.mask.items()} == result.info["layer_keep"]
    for n, w in prunable(result.model).items():
        kept = result.mask[n]
        assert torch.equal(w[kept], prunable(teacher)[n][kept]) and (w[~kept] == 0).all(), n


def test_a_high_gamma_meets_the_budget_and_freezes(digits_teacher):
    train, test, teacher = digits_teacher
    config = tiny(method="harp", sparsity=0.95, harp=HarpConfig(epochs=3, gamma=50.0, pgd_steps=1, loss="trades"))
    result = get_method("harp").prune(PruneContext(teacher, config, train, test, torch.device("cpu")))
    met = result.info["budget_met_after_epoch"]
    assert met is not None
    assert [h["gamma"] for h in result.history][met:] == [50.0 * met] * (3 - met)
    assert result.info["expected_keep"] <= 0.05 * 1.0001


def test_harp_on_a_conv_model_meets_kappa(digits_teacher):
    config = tiny(method="harp", model="convnet", sparsity=0.97, harp=HarpConfig(epochs=1, pgd_steps=1),
                  teacher=deadwood.TeacherConfig(epochs=1))
    device = torch.device("cpu")
    train, test = load_data(config, device)
    teacher, _ = get_teacher(config, train, test, device, Cache())
    result = get_method("harp").prune(PruneContext(teacher, config, train, test, device))
    total = sum(w.numel() for w in prunable(teacher).values())
    zeros = sum(int((w == 0).sum()) for w in prunable(result.model).values())
    assert sum(int(m.sum()) for m in result.mask.values()) == total - round(0.97 * total)
    assert zeros >= round(0.97 * total)


# --------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("field, value, words", [
    ("epochs", 0, "harp.epochs must be a whole number >= 1 (or None: the solve's epochs), got 0"),
    ("epochs", 2.5, "harp.epochs must be a whole number >= 1 (or None: the solve's epochs), got 2.5"),
    ("lr", 0.0, "harp.lr must be > 0, got 0.0"),
    ("momentum", 1.0, "harp.momentum must be in [0, 1), got 1.0"),
    ("weight_decay", -1e-4, "harp.weight_decay must be >= 0, got -0.0001"),
    ("gamma", 0.0, "harp.gamma must be > 0, got 0.0"),
    ("gamma", float("nan"), "harp.gamma must be > 0, got nan"),
    ("alpha", 1.0, "harp.alpha must be in [0, 1)"),
    ("alpha", -0.1, "harp.alpha must be in [0, 1)"),
    ("loss", "mart", "unknown harp loss 'mart'; choose one of: pgd, trades"),
    ("beta", -1.0, "harp.beta must be >= 0, got -1.0"),
    ("pgd_steps", 0, "harp.pgd_steps must be a whole number >= 1, got 0"),
    ("step_size", 0.0, "harp.step_size must be > 0, got 0.0"),
])
def test_bad_settings_are_named(field, value, words):
    with pytest.raises(ConfigError) as e:
        tiny(method="harp", harp=HarpConfig(**{field: value}))
    assert words in str(e.value)


def test_an_own_stage_longer_than_the_matched_budget_is_refused():
    with pytest.raises(ConfigError, match="fewer than its own stage's 99; lower harp.epochs"):
        tiny(method="harp", harp=HarpConfig(epochs=99))
    assert tiny(method="harp", budget="finetune", harp=HarpConfig(epochs=99)).harp.epochs == 99


def test_a_single_prunable_layer_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="harp needs 2 or more prunable layers.*as prune_layers chose them"):
        check_method(tiny(method="harp", prune_layers=LayersConfig(include=("6",))))
    check_method(tiny(method="hydra", prune_layers=LayersConfig(include=("6",))))  # other methods take it

    torch.manual_seed(0)
    single = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    train = (torch.rand(40, 1, 8, 8), torch.arange(40) % 10)
    test = (torch.rand(20, 1, 8, 8), torch.arange(20) % 10)
    with pytest.raises(ConfigError, match="harp needs 2 or more prunable layers.* has 1 to prune; use hydra"):
        deadwood.prune(single, train, test, method="harp", sparsity=0.5, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.*"))


# --------------------------------------------------------------------------- the app

def test_the_app_offers_harp_and_its_settings():
    from streamlit.testing.v1 import AppTest
    from apptest import APP, widget

    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception, at.exception
    assert "harp" in widget(at, "method").options
    assert widget(at, "harp_epochs").value == 0  # 0: None, the solve's epochs
    assert widget(at, "harp_loss").options == ["pgd", "trades"]
    widget(at, "method").set_value("harp")
    widget(at, "harp_epochs").set_value(1)
    widget(at, "harp_gamma").set_value(0.05)
    at.run()
    assert not at.exception, at.exception
    assert not at.button(key="run").disabled
