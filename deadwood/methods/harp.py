"""``harp``: HARP, Holistic Adversarially Robust Pruning (Zhao & Wressnegger, ICLR 2023).

HARP learns *how many* weights each layer keeps and *which* ones, together, on the adversarial
loss. Its reference code is intellisec/harp (``models/layers.py``, ``utils/model.py``,
``utils/hw.py``, ``utils/adv.py``, ``train.py``); this is a re-implementation of its weight-pruning
mode (``--exp-mode harp_prune --prune_reg weight``), with the defaults of its README command for
CIFAR-10 and of ``configs/config-cifar10.yml``.

Recipe (Stage 1 · HARP scores and rates), with the teacher's weights and biases frozen:

- Every prunable layer ``l`` (``n_l`` weights) gets an importance score per weight, ``s_l``,
  initialised as the reference's scaled initialisation ``√(6 / fan_in) · w / max|w|``, and one
  rate parameter ``r_l``. Its keep rate is ``k_l = k_min + (1 - k_min) · sigmoid(r_l)`` with
  ``k_min = alpha · (1 - κ)``, so no layer is emptied while rates are learned. The rates start
  from the reference's uniform strategy (``010_uni``): every ``k_l = 1 - κ``, that is
  ``r_l = logit(clip((k - k_min) / (1 - k_min), -0.99, 0.99))``.
- The forward pass uses ``w · m_l`` with ``m_l`` the top ``n_l - ⌊(1 - k_l) n_l⌋`` of ``|s_l|``.
  The top-k is not differentiable; as in the reference, the backward pass is straight-through:
  the mask's gradient ``g = w · dL/d(w·m)`` goes to the scores unchanged (through ``|·|``), and
  its sum over the layer, ``Σ g``, goes to ``k_l`` (keeping more weights is read as turning on all
  of them a little), and on through the sigmoid to ``r_l``.
- Loss: PGD adversarial training at the run's ε (``harp.pgd_steps`` 10 steps of
  ``harp.step_size · ε`` = ε/4, random start, crafted in eval mode), or TRADES with ``harp.beta``
  (``harp.loss``), plus the budget term ``γ_e · max(0, Σ n_l k_l / (N (1 - κ)) - 1)``: zero while
  the expected kept weights are within the budget, rising linearly with the excess.
  ``γ_e = (e + 1) · harp.gamma`` in epoch ``e`` (0-based), frozen at its value of the first epoch
  after which the term is 0 (to four decimals): first robustness, then the budget, then both.
- SGD on scores, rates and the BatchNorm affine parameters (the reference leaves those trainable
  too): ``harp.lr`` 0.1, momentum 0.9, weight decay 5e-4, and the reference's cosine schedule
  per epoch, ``lr · ½ (1 + cos((e - 1) π / E))`` (its epoch index starts one early).

The final mask meets κ exactly, with the cut's collapse guard: the learned allocation
``k_l n_l`` is scaled by one factor until it adds up to ``N - round(κN)`` kept weights, each
layer clipped to ``[min(min_keep, n_l), n_l]`` (a bisection on the factor), and rounded by
largest remainder (ties to the earlier layer), so it is deterministic; then every layer keeps its
top ``|s_l|``. Stage 3, the fine-tune every method shares, follows.

Departures from the reference:

- Stage 3 is the shared distillation + adversarial fine-tune, not HARP's own (100 epochs of the
  same adversarial loss, SGD lr 0.01), and the stage's epochs follow the budget protocol
  (``harp.epochs``, None: the solve's) where the reference prunes for 20 epochs.
- The final mask meets κ exactly and keeps ``min_keep`` weights a layer. The reference keeps
  whatever the learned rates give once the budget term is 0, at or below the budget.
- The mask after the last epoch is kept; the reference keeps the epoch with the best adversarial
  accuracy *on the test set* among those after the budget was first met.
- BatchNorm keeps the teacher's running statistics (the wrapped network runs in eval mode); the
  reference prunes in training mode. With batch statistics, a layer the rates nearly empty made
  the summed rate gradients explode on a torchvision ShuffleNet (past 1e12 in the first epoch,
  then NaN under SGD).
- Batch size is the run's (64 by default) where the reference uses 128; the attack's random start
  is clipped to [0, 1] before the first step (deadwood.robustness.training.pgd).
- Only the uniform initial strategy; the reference also reads LAMP and ERK strategies from
  precomputed files for its architectures. Only weight (unstructured) pruning, not its channel
  mode with a FLOPs budget.
- HARP refuses a model with a single prunable layer: there the budget fixes the one rate, and what
  is left is HYDRA.
"""
from __future__ import annotations

import copy
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..data.datasets import batches
from ..errors import ConfigError
from ..events import Stage, StepReports, emit
from ..pruning.masks import Mask, prunable
from ..robustness.accuracy import accuracy
from ..robustness.training import pgd
from ..train import autocast
from .budget import own_stage_epochs
from .registry import PruneContext, PruneResult, register

STAGE = Stage("harp", "Stage 1 · HARP scores and rates", "harp scores+rates")
MIN_LAYERS = 2
RATE_CLIP = 0.99  # the reference's clip of the inverse rate before the logit
PLACES = 4  # the budget counts as met when the term rounds to 0 at this many places (the reference's)


# --------------------------------------------------------------------------- pieces

def initial_scores(weight: torch.Tensor) -> torch.Tensor:
    """The reference's scaled score initialisation: ``√(6 / fan_in) · w / max|w|``."""
    fan_in = weight[0].numel()  # in_features, or in_channels/groups · kernel area
    top = weight.detach().abs().max()
    return math.sqrt(6 / fan_in) * weight.detach() / (top if top > 0 else 1)


def keep_rate(rate: torch.Tensor, k_min: float) -> torch.Tensor:
    """A layer's keep rate from its rate parameter: ``k_min + (1 - k_min) · sigmoid(r)``."""
    return k_min + (1 - k_min) * torch.sigmoid(rate)


def rate_parameter(k: float, k_min: float) -> float:
    """The rate parameter whose keep rate is ``k`` (the reference's inverse, clipped at ±0.99)."""
    inv = min(max((k - k_min) / (1 - k_min), -RATE_CLIP), RATE_CLIP)
    return math.log(inv / (1 - inv))


def layer_keep(k: float, n: int) -> int:
    """Weights a layer of ``n`` keeps at rate ``k`` while training: ``n - ⌊(1 - k) n⌋``, as the reference."""
    return n - int((1 - k) * n)


class _Subnet(torch.autograd.Function):
    """The top ``layer_keep(k, n)`` of ``|s|`` as a 0/1 mask; backward: straight-through to the
    scores, and the sum of the mask's gradient to the rate."""

    @staticmethod
    def forward(ctx, magnitude: torch.Tensor, k: torch.Tensor):
        keep = layer_keep(float(k), magnitude.numel())
        out = torch.zeros(magnitude.numel(), device=magnitude.device, dtype=magnitude.dtype)
        if keep:
            out[torch.topk(magnitude.reshape(-1), keep).indices] = 1
        return out.view_as(magnitude)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad.sum()


def budget_term(expected_keep: torch.Tensor, target_keep: float) -> torch.Tensor:
    """The reference's hardware loss for weights: ``max(0, kept / target - 1)`` (fractions of N)."""
    return torch.clamp(expected_keep / target_keep - 1.0, min=0.0)


def allocate(desired: dict[str, float], sizes: dict[str, int], keep: int,
             min_keep: int) -> tuple[dict[str, int], dict[str, int]]:
    """Whole per-layer counts adding up to exactly ``keep``: ``desired`` scaled by one factor, each
    layer clipped to ``[min(min_keep, n), n]``, rounded by largest remainder (ties: the earlier
    layer first). Returns the counts and the layers the collapse guard raised ({layer: weights
    added}). Raise ConfigError when no such counts exist."""
    names = list(sizes)
    lo = {n: min(min_keep, sizes[n]) for n in names}
    total = sum(sizes.values())
    if not sum(lo.values()) <= keep <= total:
        raise ConfigError(f"{keep} kept weights cannot be split over {len(names)} layers of {total} weights "
                          f"while each keeps min_keep {min_keep}; lower the sparsity or min_keep")
    want = {n: max(float(desired[n]), 1e-12) for n in names}

    def fill(t: float) -> dict[str, float]:
        return {n: min(max(t * want[n], lo[n]), sizes[n]) for n in names}

    a, b = 0.0, max(sizes[n] / want[n] for n in names)
    for _ in range(200):  # sum(fill(t)) rises with t from sum(lo) to total: bisect to keep
        mid = (a + b) / 2
        if sum(fill(mid).values()) < keep:
            a = mid
        else:
            b = mid
    real = fill(b)
    counts = {n: min(max(math.floor(real[n]), lo[n]), sizes[n]) for n in names}
    order = sorted(range(len(names)), key=lambda i: (-(real[names[i]] - math.floor(real[names[i]])), i))
    left = keep - sum(counts.values())
    while left:
        step = 1 if left > 0 else -1
        moved = False
        for i in (order if step > 0 else order[::-1]):
            n = names[i]
            if lo[n] <= counts[n] + step <= sizes[n]:
                counts[n] += step
                left -= step
                moved = True
                if not left:
                    break
        if not moved:  # the bounds checked above rule this out; it guards an endless loop
            raise ConfigError("the learned HARP allocation could not be rounded to the budget")
    share = {n: b * want[n] for n in names}  # what the learned split alone would give
    guarded = {n: lo[n] - math.floor(share[n] + 1e-9) for n in names if share[n] < lo[n] - 1e-9}
    return counts, guarded


# --------------------------------------------------------------------------- the scored network

class HarpModel(nn.Module):
    """``model`` evaluated with every prunable weight replaced by ``w · m(|s|, k)``: scores ``s``
    and rate parameters ``r`` per layer, learned; the model's own weights untouched."""

    def __init__(self, model: nn.Module, sparsity: float, alpha: float):
        super().__init__()
        self.model = model
        weights = prunable(model)
        self.names = list(weights)
        self.sizes = {n: w.numel() for n, w in weights.items()}
        self.total = sum(self.sizes.values())
        self.sparsity = sparsity
        self.target = 1 - sparsity  # the fraction of weights the budget keeps
        self.k_min = alpha * self.target
        start = rate_parameter(self.target, self.k_min)
        self.scores = nn.ParameterList([nn.Parameter(initial_scores(w)) for w in weights.values()])
        self.rates = nn.ParameterList([nn.Parameter(torch.tensor(start, device=w.device)) for w in weights.values()])

    def train(self, mode: bool = True) -> "HarpModel":
        """The wrapped network always runs in eval mode: BatchNorm keeps the teacher's statistics.
        In training mode, a layer the rates nearly empty leaves BatchNorm dividing by a batch
        variance near zero, and the summed rate gradients grow without bound (on a torchvision
        ShuffleNet, beyond 1e12 in the first epoch: SGD turns them into NaN)."""
        super().train(mode)
        self.model.eval()
        return self

    def keep_rates(self) -> list[torch.Tensor]:
        return [keep_rate(r, self.k_min) for r in self.rates]

    def expected_keep(self) -> torch.Tensor:
        """``Σ n_l k_l / N``: the fraction of weights the learned rates keep (differentiable)."""
        return sum(self.sizes[n] * k for n, k in zip(self.names, self.keep_rates())) / self.total

    def budget(self) -> torch.Tensor:
        return budget_term(self.expected_keep(), self.target)

    def masked_weights(self) -> dict[str, torch.Tensor]:
        weights = prunable(self.model)
        return {n: weights[n] * _Subnet.apply(s.abs(), k)
                for n, s, k in zip(self.names, self.scores, self.keep_rates())}

    def forward(self, x):
        return functional_call(self.model, self.masked_weights(), (x,))

    def rates_now(self) -> dict[str, float]:
        with torch.no_grad():
            return {n: float(k) for n, k in zip(self.names, self.keep_rates())}

    def allocation(self, min_keep: int) -> tuple[dict[str, int], dict[str, int]]:
        """Kept weights per layer in the final mask (the learned allocation scaled to meet κ
        exactly) and the layers the collapse guard raised (:func:`allocate`)."""
        keep = self.total - round(self.sparsity * self.total)
        rates = self.rates_now()
        return allocate({n: rates[n] * self.sizes[n] for n in self.names}, self.sizes, keep, min_keep)

    def mask(self, min_keep: int) -> Mask:
        """The final mask: each layer's top ``counts[l]`` of ``|s_l|``, κ met exactly."""
        counts, _ = self.allocation(min_keep)
        out = {}
        with torch.no_grad():
            for n, s in zip(self.names, self.scores):
                keep = torch.zeros(s.numel(), dtype=torch.bool, device=s.device)
                if counts[n]:
                    keep[torch.topk(s.detach().abs().reshape(-1).float(), counts[n]).indices] = True
                out[n] = keep.view_as(s)
        return Mask(out)


# --------------------------------------------------------------------------- the loss

def cosine_lr(lr: float, epoch: int, epochs: int) -> float:
    """The reference's cosine schedule at 0-based ``epoch``: ``lr · ½ (1 + cos((epoch - 1) π / epochs))``."""
    return lr * 0.5 * (1 + math.cos((epoch - 1) / epochs * math.pi))


def _pgd_loss(net: nn.Module, x, y, eps: float, steps: int, step_size: float, gen) -> torch.Tensor:
    net.eval()
    try:
        xa = pgd(net, x, y, eps, steps, step_size, generator=gen)
    finally:
        net.train()
    return F.cross_entropy(net(xa), y)


def _trades_loss(net: nn.Module, x, y, eps: float, steps: int, step_size: float, beta: float, gen) -> torch.Tensor:
    """TRADES (Zhang et al. 2019) as the reference computes it: the attack maximises the KL to the
    clean prediction from ``x + 0.001·N(0, 1)``; loss ``CE(f(x), y) + β · KL(f(x) || f(x'))``."""
    net.eval()
    try:
        with torch.no_grad():
            clean = F.softmax(net(x), 1)
        noise = torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
        xa = (x + 0.001 * noise).detach()
        for _ in range(steps if eps > 0 else 0):
            xa.requires_grad_(True)
            with torch.enable_grad():
                kl = F.kl_div(F.log_softmax(net(xa), 1), clean, reduction="sum")
                (grad,) = torch.autograd.grad(kl, xa)
            xa = xa.detach() + step_size * grad.sign()
            xa = torch.min(torch.max(xa, x - eps), x + eps).clamp(0, 1)
        xa = xa.clamp(0, 1).detach() if eps > 0 else x
    finally:
        net.train()
    logits = net(x)
    robust = F.kl_div(F.log_softmax(net(xa), 1), F.softmax(logits, 1), reduction="sum") / len(x)
    return F.cross_entropy(logits, y) + beta * robust


# --------------------------------------------------------------------------- the method

@functools.lru_cache(maxsize=64)
def _layer_count(model: str, info, include: tuple, exclude: tuple) -> int:
    from ..pruning.masks import select_layers
    from ..models.registry import build_model

    with torch.random.fork_rng(devices=[]):
        return len(prunable(select_layers(build_model(model, info), include, exclude)))


def check(config, stage_steps: int | None = None) -> None:
    """HARP's own refusal, before any work: a model with fewer than two prunable layers.
    (``stage_steps``, the optimiser steps of its stage, changes nothing here.)"""
    count = _layer_count(config.model, config.data_info(), config.prune_layers.include, config.prune_layers.exclude)
    if count < MIN_LAYERS:
        narrowed = config.prune_layers.include != ("*",) or bool(config.prune_layers.exclude)
        raise ConfigError(f"harp needs {MIN_LAYERS} or more prunable layers: it learns how the budget is split "
                          f"across them, and model '{config.model}' has {count} to prune"
                          f"{' (as prune_layers chose them)' if narrowed else ''}; use hydra for a single layer")


def _trainable_norms(model: nn.Module) -> list[nn.Parameter]:
    """The BatchNorm affine parameters, which the reference leaves trainable while it prunes."""
    out = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            out += [p for p in (m.weight, m.bias) if p is not None]
    return out


@register("harp", "importance scores and per-layer rates learned together on the adversarial loss, "
          "the budget as a rising penalty (HARP)", color="#e377c2", section="harp", stage=STAGE, check=check)
def prune(ctx: PruneContext) -> PruneResult:
    cfg, run = ctx.config.harp, ctx.config
    model = ctx.student()
    for p in model.parameters():
        p.requires_grad_(False)
    norms = _trainable_norms(model)
    for p in norms:
        p.requires_grad_(True)
    net = HarpModel(model, run.sparsity, cfg.alpha).to(ctx.device)
    if len(net.names) < MIN_LAYERS:  # check() refuses this before any work; a direct call lands here
        raise ConfigError(f"harp needs {MIN_LAYERS} or more prunable layers, the model has {len(net.names)}")
    params = [*net.scores, *net.rates, *norms]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(run.seed + 3)
    epochs = own_stage_epochs(run)
    eps, step_size = float(run.epsilon), cfg.step_size * float(run.epsilon)
    frozen, met_after = None, None
    history: list[dict] = []

    def loss_of(x, y):
        if cfg.loss == "trades":
            return _trades_loss(net, x, y, eps, cfg.pgd_steps, step_size, cfg.beta, gen)
        if eps == 0:
            return F.cross_entropy(net(x), y)
        return _pgd_loss(net, x, y, eps, cfg.pgd_steps, step_size, gen)

    reports = StepReports(ctx.on_event, STAGE.name, epochs, len(ctx.train), run.batch_size)
    emit(ctx.on_event, "start", STAGE.name, 0, epochs)
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(cfg.lr, epoch, epochs)
        gamma = frozen if frozen is not None else (epoch + 1) * cfg.gamma
        net.train()
        sums = {"loss": 0.0, "adversarial": 0.0, "budget": 0.0}
        steps = 0
        reports.epoch()
        for x, y in batches(ctx.train, run.batch_size, shuffle=True, generator=gen):
            with autocast(ctx.device, run.amp):
                adv = loss_of(x, y)
                term = net.budget()
                loss = adv + gamma * term
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for k, v in (("loss", loss), ("adversarial", adv), ("budget", term)):
                sums[k] = sums[k] + v.detach().float()
            steps += 1
            reports.batch(epoch + 1, steps)
        with torch.no_grad():
            after = float(net.budget())
            keep_fraction = float(net.expected_keep())
        if frozen is None and round(after, PLACES) == 0:
            frozen, met_after = gamma, epoch + 1
        mask = net.mask(run.min_keep)
        pruned = copy.deepcopy(model)
        mask.apply(pruned)
        entry = {"phase": STAGE.name, "epoch": epoch + 1,
                 **{k: float(v) / max(steps, 1) for k, v in sums.items()},
                 "gamma": gamma, "expected_keep": keep_fraction, "budget_after": after,
                 "rates": net.rates_now(), "accuracy": accuracy(pruned, ctx.test)}
        history.append(entry)
        emit(ctx.on_event, "epoch", STAGE.name, epoch + 1, epochs, entry)
    emit(ctx.on_event, "end", STAGE.name, epochs, epochs)

    counts, guarded = net.allocation(run.min_keep)
    mask = net.mask(run.min_keep)
    rates = net.rates_now()
    for p in model.parameters():
        p.requires_grad_(True)
    mask.apply(model)
    info = {"layer_keep": counts, "rates": rates, "guarded": guarded,
            "expected_keep": float(net.expected_keep().detach()),  # Σ n_l k_l / N, before scaling to κ
            "gamma": frozen if frozen is not None else (epochs * cfg.gamma if epochs else None),
            "budget_met_after_epoch": met_after}
    return PruneResult(model, mask, history, info=info)
