"""``hydra``: HYDRA's pruning phase (Sehwag et al., NeurIPS 2020), as the reference code runs it.

The reference is inspire-group/hydra (``train.py --exp-mode prune --scaled-score-init --trainer adv``):

- Every prunable weight (the weight of each ``nn.Linear`` and ``nn.Conv2d``) gets an importance
  score, initialised to ``√(6 / fan_in) · w / max|w|`` per layer (``utils/model.py``,
  ``initialize_scaled_score``). Its magnitude is ``|w|`` scaled per layer, so before any training the
  mask is exactly magnitude-layerwise's.
- The forward pass uses ``w · m`` with ``m`` the per-layer top-k of ``|s|`` (``models/layers.py``,
  ``GetSubnet(popup_scores.abs(), k)``). The top-k has no gradient and hands ``dL/dm`` straight
  through, so ``dL/ds = sign(s) · w · dL/d(w·m)``; a score pushed far below zero is kept, like one
  far above it.
- The weights and biases are frozen. The scores, and BatchNorm's weight and bias unless
  ``hydra.freeze_bn`` (the reference's ``freeze_vars`` skips BatchNorm), are trained by SGD
  (``hydra.lr`` 0.1, ``momentum`` 0.9, ``weight_decay`` 1e-4) with the learning rate set once per
  epoch on a cosine schedule (``utils/schedules.py``).
- The loss is TRADES (``utils/adv.py``, ``trades_loss``) at the run's ε:
  ``CE(f(x), y) + β · KL(softmax f(x) ‖ softmax f(x'))`` (batch mean, β = ``hydra.beta`` 6), the
  clean softmax not detached. ``x'`` starts at ``x + 0.001·N(0, 1)`` and takes ``hydra.attack_steps``
  (10) signed steps of ``hydra.step_fraction · ε`` (ε/4, the reference's 2/255 at 8/255) up the KL
  to the clean output, each projected onto the ε-ball and [0, 1], with the model in eval mode.
  β = 0 trains on the clean cross-entropy alone (the reference's ``--trainer base``) and skips the attack.
- The final mask is the per-layer top-k of the last epoch's ``|s|`` (the reference fine-tunes its
  latest checkpoint, not its best), applied to the frozen weights.

What remains different from the reference:

- Epochs follow the run's budget (:mod:`deadwood.methods.budget`): ``hydra.epochs``, or the solve's
  epochs when that is None (15 by default), not the reference's 20.
- Stage 3 is the fine-tune every method shares (distillation plus the fine-tune attack, Adam), not the
  reference's 100 epochs of TRADES with SGD at lr 0.01; and Stage 0 is the shared teacher (FGSM
  adversarial training with Adam by default), not a TRADES-trained one.
- The per-layer counts come from :func:`deadwood.allocation.uniform_counts` (largest remainder), so the
  global count is exactly ``round(κN)``; the reference prunes ``int((1 - k)·n)`` per layer, which can keep
  one weight more in a layer.
- The cosine schedule is ``lr · ½(1 + cos(π e / E))`` for epochs ``e = 0 … E-1``. The reference writes
  ``(e - 1) / E``, which starts its first epoch below the peak and, with ``E = 1``, trains at lr 0.
- Batches are the run's (``batch_size``, 64 by default; the reference's 128), without the reference's
  data augmentation or semi-supervised data.
- Every BatchNorm layer's affine parameters train (the reference: ``BatchNorm2d``'s, the only kind its
  models have). Each step forwards the clean batch and the adversarial batch once each in train mode, so
  the running statistics see each once (the reference forwards the clean batch three times).
- The TRADES random start and the batch order come from the run's seed.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..pruning.allocation import uniform_counts
from ..pruning.masks import Mask, prunable
from ..train import run_epochs
from ..robustness.accuracy import accuracy
from ..events import Stage
from .budget import own_stage_epochs
from .registry import PruneContext, PruneResult, register

STAGE = Stage("hydra", "Stage 1 · HYDRA score training", "hydra scores")  # what this method's own Stage 1 is called


def scaled_scores(weight: torch.Tensor) -> torch.Tensor:
    """The reference's scaled score initialisation: ``√(6 / fan_in) · w / max|w|``.

    ``fan_in`` is the inputs one output unit sees (``in_features``; ``in_channels / groups · kh · kw``),
    as ``nn.init._calculate_correct_fan(w, "fan_in")`` counts it. A layer of zeros scores 0 everywhere."""
    w = weight.detach()
    top = w.abs().max()
    if top == 0:
        return torch.zeros_like(w)
    return math.sqrt(6 / w[0].numel()) * w / top


class _TopK(torch.autograd.Function):
    """Binary top-k mask in the forward pass, identity in the backward pass."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, k: int):
        keep = torch.zeros(scores.numel(), device=scores.device, dtype=scores.dtype)
        keep[torch.topk(scores.reshape(-1), k).indices] = 1
        return keep.view_as(scores)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class ScoredModel(nn.Module):
    """``model`` evaluated with every prunable weight replaced by ``w · topk(|s|)``, per layer.

    ``init`` gives each layer's starting scores from its weight; ``signed`` ranks ``s`` itself instead
    of ``|s|`` (``hydra-adam``'s choice)."""

    def __init__(self, model: nn.Module, sparsity: float, *,
                 init: Callable[[torch.Tensor], torch.Tensor] = scaled_scores, signed: bool = False):
        super().__init__()
        self.model = model
        self.signed = signed
        weights = prunable(model)
        cut = uniform_counts({n: w.numel() for n, w in weights.items()}, sparsity)
        self.keep = {n: w.numel() - cut[n] for n, w in weights.items()}
        self.names = list(weights)
        self.scores = nn.ParameterList([nn.Parameter(init(w.detach()).clone()) for w in weights.values()])

    def _keeps(self) -> dict[str, torch.Tensor]:
        return {n: _TopK.apply(s if self.signed else s.abs(), self.keep[n]) for n, s in zip(self.names, self.scores)}

    def masked_weights(self) -> dict[str, torch.Tensor]:
        weights = prunable(self.model)
        return {n: weights[n] * m for n, m in self._keeps().items()}

    def forward(self, x):
        return functional_call(self.model, self.masked_weights(), (x,))

    def mask(self) -> Mask:
        with torch.no_grad():
            return Mask({n: m > 0 for n, m in self._keeps().items()})


def norm_parameters(model: nn.Module) -> list[nn.Parameter]:
    """BatchNorm's weight and bias: what the reference trains beside the scores (unless --freeze-bn)."""
    return [p for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for p in (m.weight, m.bias) if p is not None]


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based) of ``epochs``, as a fraction of ``hydra.lr``:
    the reference's ``utils/schedules.py`` (cosine without its one-epoch shift; see the module's notes)."""
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "step":
        return 0.01 if epoch >= 0.9 * epochs else 0.1 if epoch >= 0.75 * epochs else 1.0
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule '{schedule}'")


def make_optimizer(cfg: "HydraConfig", params, epochs: int):  # noqa: F821  (deadwood.config reads methods)
    """SGD with ``cfg``'s lr, momentum and weight decay, and its per-epoch schedule (a LambdaLR that
    :func:`deadwood.train.run_epochs` steps at the end of every epoch)."""
    opt = torch.optim.SGD(list(params), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(cfg.schedule, e, epochs))
    return opt, sched


def trades_adversary(model: nn.Module, x: torch.Tensor, eps: float, steps: int, step_size: float, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """TRADES' inner maximisation: from ``x + 0.001·N(0, 1)``, ``steps`` signed steps of ``step_size`` up
    ``KL(softmax f(x) ‖ softmax f(x'))``, each projected onto the L-inf ε-ball around ``x`` and [0, 1];
    ``model`` in eval mode meanwhile (restored after)."""
    if eps == 0:
        return x.detach()
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            clean = F.softmax(model(x), 1)
        noise = torch.randn(x.shape, generator=generator, device="cpu" if generator is not None else x.device)
        adv = x.detach() + 0.001 * noise.to(x.device, x.dtype)
        for _ in range(steps):
            adv = adv.detach().requires_grad_(True)
            with torch.enable_grad():
                kl = F.kl_div(F.log_softmax(model(adv), 1), clean, reduction="sum")
                (grad,) = torch.autograd.grad(kl, adv)
            adv = adv.detach() + step_size * grad.sign()
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
        return adv.clamp(0, 1).detach()
    finally:
        model.train(was)


def trades_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, beta: float):
    """``CE(f(x), y) + β · KL(softmax f(x) ‖ softmax f(x_adv))`` (the KL summed over the batch, divided by
    its size); the clean softmax carries gradient, as in the reference. Returns the loss and its terms."""
    logits = model(x)
    ce = F.cross_entropy(logits, y)
    if beta == 0:
        return ce, {"ce": ce}
    kl = F.kl_div(F.log_softmax(model(x_adv), 1), F.softmax(logits, 1), reduction="sum") / len(x)
    return ce + beta * kl, {"ce": ce, "kl": kl}


@register("hydra", "scores √(6/fan_in)·w/max|w| trained by SGD on the TRADES loss, per-layer top-k of |s| (HYDRA)",
          color="#9467bd", section="hydra", stage=STAGE)
def prune(ctx: PruneContext) -> PruneResult:
    cfg, run = ctx.config.hydra, ctx.config
    epochs = own_stage_epochs(run)
    model = ctx.student()
    for p in model.parameters():
        p.requires_grad_(False)
    norms = [] if cfg.freeze_bn else norm_parameters(model)
    for p in norms:
        p.requires_grad_(True)
    scored = ScoredModel(model, run.sparsity).to(ctx.device)
    start = scored.mask()
    opt, sched = make_optimizer(cfg, [*scored.scores.parameters(), *norms], epochs)
    gen = torch.Generator().manual_seed(run.seed + 2)
    step_size = cfg.step_fraction * run.epsilon

    def step(x, y):
        xa = x if cfg.beta == 0 else trades_adversary(scored, x, run.epsilon, cfg.attack_steps, step_size,
                                                      generator=gen)
        return trades_loss(scored, x, y, xa, cfg.beta)

    def end_epoch(epoch):
        mask = scored.mask()
        pruned = copy.deepcopy(model)  # the current BatchNorm state, the frozen weights
        mask.apply(pruned)
        return {"accuracy": accuracy(pruned, ctx.test), "lr": opt.param_groups[0]["lr"],
                "replaced": replaced(start, mask)}

    history = run_epochs(scored, ctx.train, step, stage=STAGE.name, epochs=epochs, lr=cfg.lr,
                         batch_size=run.batch_size, seed=run.seed + 2, on_event=ctx.on_event,
                         end_epoch=end_epoch, amp=run.amp, optimizer=opt, scheduler=sched)
    mask = scored.mask()
    for p in model.parameters():
        p.requires_grad_(True)
    mask.apply(model)
    return PruneResult(model, mask, history, info={"layer_keep": dict(scored.keep), "replaced": replaced(start, mask)})


def replaced(start: Mask, mask: Mask) -> float:
    """The fraction of ``start``'s kept weights that ``mask`` drops (as many come in: the counts are fixed)."""
    kept = sum(int(m.sum()) for m in start.values())
    gone = sum(int((start[n] & ~mask[n]).sum()) for n in start)
    return gone / max(kept, 1)
