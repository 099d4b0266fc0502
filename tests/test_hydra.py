"""HYDRA as the reference (inspire-group/hydra) runs its pruning phase: scaled scores, ranking by |s|,
SGD with momentum and weight decay on a cosine schedule, the TRADES loss; weights frozen, per-layer top-k."""
import argparse
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deadwood import ConfigError, HydraConfig, build_model, dataset_info, get_method, with_updates
from deadwood.pruning.masks import layerwise_cut, magnitudes, prunable
from deadwood.methods import PruneContext
from deadwood.methods.budget import own_stage_epochs
from deadwood.methods.hydra import (ScoredModel, lr_factor, make_optimizer, scaled_scores, trades_adversary,
                                    trades_loss)
from deadwood.pipeline import Cache, get_teacher, load_data
from conftest import tiny


def _model(name="mlp", seed=0, dataset="digits"):
    return build_model(name, dataset_info(dataset), seed=seed)


def test_the_defaults_are_the_reference_recipe():
    """args.py / configs.yml of inspire-group/hydra: SGD lr 0.1, momentum 0.9, wd 1e-4, cosine; TRADES
    β 6, 10 steps of ε/4 (2/255 at 8/255); BatchNorm trained with the scores."""
    cfg = HydraConfig()
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.schedule) == (0.1, 0.9, 1e-4, "cosine")
    assert (cfg.beta, cfg.attack_steps, cfg.step_fraction, cfg.freeze_bn) == (6.0, 10, 0.25, False)
    assert cfg.epochs is None and own_stage_epochs(tiny(method="hydra", hydra=cfg)) == tiny().deadwooding.epochs


def test_initial_scores_follow_the_scaled_formula():
    """s = √(6 / fan_in) · w / max|w| per layer, fan_in as torch counts it (grouped convolutions included)."""
    model = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 10))
    scored = ScoredModel(model, 0.5)
    for (name, w), s in zip(prunable(model).items(), scored.scores):
        fan_in = nn.init._calculate_correct_fan(w, "fan_in")
        assert fan_in == {"0.weight": 2 * 9, "3.weight": 96}[name]
        torch.testing.assert_close(s.detach(), math.sqrt(6 / fan_in) * w.detach() / w.detach().abs().max())
    assert torch.equal(scaled_scores(torch.zeros(3, 4)), torch.zeros(3, 4))


@pytest.mark.parametrize("name, dataset", [("mlp", "digits"), ("lenet5", "mnist"), ("resnet20", "cifar10")])
def test_untrained_scores_give_the_layerwise_magnitude_mask(name, dataset):
    """|s| is |w| scaled per layer: before any training (epoch 0) the mask is magnitude-layerwise's."""
    model = _model(name, dataset=dataset)
    for sparsity in (0.5, 0.9, 0.99):
        mask = ScoredModel(model, sparsity).mask()
        expected = layerwise_cut(magnitudes(model), sparsity)
        for n in expected:
            assert torch.equal(mask[n], expected[n]), (n, sparsity)


def test_a_large_negative_score_is_kept():
    """Ranking is by |s|: a score pushed far below zero marks a connection kept, not one cut."""
    model = _model()
    scored = ScoredModel(model, 0.9)
    name = scored.names[0]
    first = scored.scores[0]
    smallest = int(first.detach().abs().argmin())
    assert not scored.mask()[name].reshape(-1)[smallest]
    with torch.no_grad():
        first.view(-1)[smallest] = -100.0
    assert scored.mask()[name].reshape(-1)[smallest]
    assert int(scored.mask()[name].sum()) == scored.keep[name]  # still k per layer


def test_score_gradient_is_straight_through_the_magnitude_and_weights_get_none():
    """d loss / d s = sign(s) · w · d loss / d(w m): top-k of |s| passes the gradient through unchanged."""
    model = _model()
    for p in model.parameters():
        p.requires_grad_(False)
    scored = ScoredModel(model, 0.5)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    F.cross_entropy(scored(x), y).backward()

    mask = scored.mask()
    effective = {n: (w * mask[n]).clone().requires_grad_(True) for n, w in prunable(model).items()}
    out = torch.func.functional_call(model, effective, (x,))
    grads = torch.autograd.grad(F.cross_entropy(out, y), list(effective.values()))
    for (n, w), g, s in zip(prunable(model).items(), grads, scored.scores):
        torch.testing.assert_close(s.grad, s.detach().sign() * w * g)
        assert w.grad is None


def test_optimiser_is_sgd_with_the_configured_momentum_decay_and_a_cosine_schedule():
    cfg = HydraConfig(lr=0.2, momentum=0.8, weight_decay=3e-4)
    params = [nn.Parameter(torch.ones(3))]
    opt, sched = make_optimizer(cfg, params, epochs=4)
    assert type(opt) is torch.optim.SGD
    group = opt.param_groups[0]
    assert (group["momentum"], group["weight_decay"], group["nesterov"], group["dampening"]) == (0.8, 3e-4, False, 0)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.2 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    assert seen[0] == pytest.approx(0.2)
    assert [lr_factor("step", e, 20) for e in (0, 14, 15, 17, 18, 19)] == [1, 1, 0.1, 0.1, 0.01, 0.01]
    assert lr_factor("constant", 3, 4) == 1


def test_trades_loss_matches_a_hand_computation():
    """CE(f(x), y) + β · (1/B) Σ_i Σ_c p_ic log(p_ic / q_ic), p = softmax f(x), q = softmax f(x'), with
    the gradient flowing through p too."""
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x, x_adv, y = torch.rand(5, 3), torch.rand(5, 3), torch.tensor([0, 1, 2, 3, 0])
    loss, terms = trades_loss(model, x, y, x_adv, beta=6.0)

    W, b = model.weight.detach().clone().requires_grad_(True), model.bias.detach().clone().requires_grad_(True)
    z, za = x @ W.T + b, x_adv @ W.T + b
    p, q = z.exp() / z.exp().sum(1, keepdim=True), za.exp() / za.exp().sum(1, keepdim=True)
    ce = -torch.log(p[torch.arange(5), y]).mean()
    kl = (p * (p.log() - q.log())).sum() / 5
    hand = ce + 6.0 * kl
    torch.testing.assert_close(loss, hand)
    torch.testing.assert_close(terms["kl"], kl)
    loss.backward()
    hand.backward()
    torch.testing.assert_close(model.weight.grad, W.grad)
    torch.testing.assert_close(model.bias.grad, b.grad)
    ce_only, _ = trades_loss(model, x, y, x_adv, beta=0.0)
    torch.testing.assert_close(ce_only, ce)


def test_trades_adversary_climbs_the_kl_as_the_reference_does():
    """One step by hand on a linear model: x0 = x + 0.001·N(0, 1); ∇_x KL(p ‖ softmax(W x0 + b)) =
    Wᵀ(q - p); x1 = clip_[0,1](proj_ε(x0 + α sign ∇)). More steps stay in the ε-ball and in [0, 1]."""
    torch.manual_seed(1)
    model = nn.Linear(6, 3)
    x = torch.rand(4, 6)
    eps, alpha = 0.1, 0.025
    adv = trades_adversary(model, x, eps, 1, alpha, generator=torch.Generator().manual_seed(7))

    W, b = model.weight.detach(), model.bias.detach()
    x0 = x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    p, q = F.softmax(x @ W.T + b, 1), F.softmax(x0 @ W.T + b, 1)
    grad = (q - p) @ W
    hand = torch.min(torch.max(x0 + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    torch.testing.assert_close(adv, hand)

    many = trades_adversary(model, x, eps, 10, alpha, generator=torch.Generator().manual_seed(7))
    assert (many - x).abs().max() <= eps + 1e-6 and many.min() >= 0 and many.max() <= 1
    kl = lambda a: F.kl_div(F.log_softmax(model(a), 1), p, reduction="sum")  # noqa: E731
    assert kl(many) > kl(adv) > kl(x0)
    assert model.training, "the model's mode is restored"
    assert torch.equal(trades_adversary(model, x, 0.0, 10, alpha), x)


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("epochs", 1.5), ("lr", 0), ("lr", float("nan")), ("momentum", 1.0), ("momentum", -0.1),
    ("weight_decay", -1e-4), ("schedule", "linear"), ("beta", -1.0), ("attack_steps", 0), ("attack_steps", 2.0),
    ("step_fraction", 0), ("step_fraction", 1.5), ("freeze_bn", "yes")])
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"hydra\.{field}"):
        HydraConfig(**{field: value}).validate()
    with pytest.raises(ConfigError, match=rf"hydra\.{field}"):
        with_updates(tiny(method="hydra"), **{f"hydra.{field}": value})


def test_every_setting_is_a_flag():
    from deadwood.cli.options import add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    flags = {a for action in parser._actions for a in action.option_strings}
    for f in dataclasses.fields(HydraConfig):
        assert f"--hydra-{f.name.replace('_', '-')}" in flags
    ns = parser.parse_args(["--method", "hydra", "--hydra-lr", "0.05", "--hydra-schedule", "step",
                            "--hydra-beta", "1", "--hydra-attack-steps", "3", "--hydra-freeze-bn"])
    cfg = config_from_args(ns).hydra
    assert (cfg.lr, cfg.schedule, cfg.beta, cfg.attack_steps, cfg.freeze_bn) == (0.05, "step", 1.0, 3, True)


def test_hydra_trains_scores_only_and_keeps_a_per_layer_budget():
    config = tiny(method="hydra", sparsity=0.9)
    device = torch.device("cpu")
    train, test = load_data(config, device)
    teacher, _ = get_teacher(config, train, test, device, Cache())
    result = get_method("hydra").prune(PruneContext(teacher, config, train, test, device))
    start = layerwise_cut(magnitudes(teacher), 0.9)
    moved = sum(int((result.mask[n] != start[n]).sum()) for n in start)
    assert moved > 0, "score training changed nothing"
    kept = sum(int(m.sum()) for m in start.values())
    assert result.info["replaced"] == pytest.approx(moved / 2 / kept)
    for n, w in prunable(result.model).items():
        t = prunable(teacher)[n]
        keep = result.mask[n]
        assert torch.equal(w[keep], t[keep]), f"{n}: kept weights changed (they are frozen)"
        assert int(keep.sum()) == int(start[n].sum()), f"{n}: the per-layer budget moved"
        assert (w[~keep] == 0).all(), f"{n}: a pruned weight is not zero"
    epochs = own_stage_epochs(config)
    assert [h["phase"] for h in result.history] == ["hydra"] * epochs
    # the learning rate each epoch trained at: the cosine from hydra.lr
    assert [h["lr"] for h in result.history] == pytest.approx(
        [0.1 * 0.5 * (1 + math.cos(math.pi * e / epochs)) for e in range(epochs)])
    assert all("kl" in h and "ce" in h for h in result.history)


class _Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("freeze_bn", [False, True])
def test_batchnorm_trains_with_the_scores_unless_frozen(freeze_bn):
    """The reference's freeze_vars leaves BatchNorm's weight and bias trainable in the pruning phase;
    --freeze-bn freezes them. Every other weight and bias stays as the teacher had it."""
    config = with_updates(tiny(method="hydra", sparsity=0.9), **{"hydra.epochs": 1, "hydra.freeze_bn": freeze_bn})
    device = torch.device("cpu")
    train, test = load_data(config, device)
    torch.manual_seed(0)
    teacher = _Normed().eval()
    result = get_method("hydra").prune(PruneContext(teacher, config, train, test, device))
    bn, old = result.model.net[2], teacher.net[2]
    assert torch.equal(bn.weight, old.weight) == freeze_bn
    assert torch.equal(bn.bias, old.bias) == freeze_bn
    for n in ("net.1.bias", "net.4.bias"):
        assert torch.equal(dict(result.model.named_parameters())[n], dict(teacher.named_parameters())[n])
    assert all(p.requires_grad for p in result.model.parameters())


# --------------------------------------------------------------------------- hydra-adam, the earlier variant

def test_hydra_adam_ranks_signed_scores_from_the_magnitudes():
    """hydra-adam: scores start at |w| (the untrained mask is magnitude-layerwise's) and the top-k of s
    itself decides, so a score pushed below zero is cut."""
    from deadwood.methods.hydra_adam import magnitude_scores

    model = _model()
    scored = ScoredModel(model, 0.9, init=magnitude_scores, signed=True)
    for s, w in zip(scored.scores, prunable(model).values()):
        assert torch.equal(s.detach(), w.detach().abs())
    expected = layerwise_cut(magnitudes(model), 0.9)
    assert all(torch.equal(scored.mask()[n], expected[n]) for n in expected)
    name, first = scored.names[0], scored.scores[0]
    largest = int(first.detach().argmax())
    with torch.no_grad():
        first.view(-1)[largest] = -100.0
    assert not scored.mask()[name].reshape(-1)[largest]


def test_hydra_adam_trains_with_adam_at_its_own_lr_for_the_budget(monkeypatch):
    import deadwood.methods.hydra_adam as hydra_adam

    seen = {}
    real = hydra_adam.run_epochs

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(hydra_adam, "run_epochs", spy)
    config = with_updates(tiny(method="hydra-adam", sparsity=0.9), **{"hydra_adam.lr": 0.02})
    device = torch.device("cpu")
    train, test = load_data(config, device)
    teacher, _ = get_teacher(config, train, test, device, Cache())
    result = get_method("hydra-adam").prune(PruneContext(teacher, config, train, test, device))
    assert seen["lr"] == 0.02 and seen.get("optimizer") is None  # run_epochs' Adam
    assert seen["epochs"] == own_stage_epochs(config) == config.deadwooding.epochs
    assert [h["phase"] for h in result.history] == ["hydra-adam"] * config.deadwooding.epochs
    assert 0 < result.info["replaced"] <= 1
    for n, w in prunable(result.model).items():
        assert torch.equal(w[result.mask[n]], prunable(teacher)[n][result.mask[n]])


@pytest.mark.parametrize("field, value", [("epochs", 0), ("lr", -1.0)])
def test_hydra_adam_bad_config_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"hydra_adam\.{field}"):
        with_updates(tiny(method="hydra-adam"), **{f"hydra_adam.{field}": value})
