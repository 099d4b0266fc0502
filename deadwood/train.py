"""One training loop for every stage: natural, adversarial and distillation losses.

:func:`run_epochs` owns the mechanics (shuffling, Adam unless a stage brings its own
optimiser and schedule, masks, mixed precision, events); the stages pass a
``step(x, y) -> (loss, metrics)`` closure and an optional ``end_epoch(epoch) -> dict`` hook.
The loop keeps no global state, so it can run under DistributedDataParallel unchanged.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .data.datasets import ArrayDataset, batches
from .events import OnEvent, StepReports, emit
from .pruning.masks import Mask
from .robustness.training import perturb

StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict]]


def autocast(device: torch.device, amp: bool):
    """bfloat16 autocast on CUDA when ``amp``; a no-op elsewhere (bf16 needs no grad scaler)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def run_epochs(model: nn.Module, train: ArrayDataset, step: StepFn, *, stage: str, epochs: int, lr: float,
               batch_size: int, seed: int, on_event: OnEvent = None, mask: Mask | None = None,
               end_epoch: Callable[[int], dict] | None = None, params: Iterable[torch.Tensor] | None = None,
               weight_decay: float = 0.0, amp: bool = False, optimizer: torch.optim.Optimizer | None = None,
               scheduler=None) -> list[dict]:
    """Train ``model`` for ``epochs`` with Adam on ``step``'s loss; return one history entry per epoch.

    With ``mask``, gradients of pruned weights are zeroed before each step and the
    mask is re-applied after it, so pruned weights stay exactly zero (Adam's
    momentum alone would revive them).

    A stage with a recipe of its own (HYDRA's SGD on a cosine schedule) passes ``optimizer``,
    used instead of ``Adam(params, lr, weight_decay)``, and ``scheduler`` (a
    ``torch.optim.lr_scheduler`` on it), stepped once at the end of every epoch, after ``end_epoch``.
    """
    device = train.x.device
    opt = optimizer if optimizer is not None else torch.optim.Adam(
        list(params) if params is not None else model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    reports = StepReports(on_event, stage, epochs, len(train), batch_size)
    emit(on_event, "start", stage, 0, epochs)
    for epoch in range(1, epochs + 1):
        model.train()
        sums: dict[str, torch.Tensor] = {}
        n = 0
        reports.epoch()
        for x, y in batches(train, batch_size, shuffle=True, generator=gen):
            with autocast(device, amp):
                loss, metrics = step(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if mask is not None:
                mask.mask_gradients(model)
            opt.step()
            if mask is not None:
                mask.apply(model)
            # Sum on device; one transfer per epoch instead of one sync per step.
            for k, v in {"loss": loss, **metrics}.items():
                v = v.detach().float()
                sums[k] = sums[k] + v if k in sums else v
            n += 1
            reports.batch(epoch, n)
        entry = {"phase": stage, "epoch": epoch}
        entry.update({k: _plain(v / max(n, 1)) for k, v in sums.items()})
        if end_epoch is not None:
            entry.update(end_epoch(epoch))
        if scheduler is not None:
            scheduler.step()
        history.append(entry)
        emit(on_event, "epoch", stage, epoch, epochs, entry)
    emit(on_event, "end", stage, epochs, epochs)
    return history


def _plain(v: torch.Tensor):
    v = v.cpu()
    return float(v) if v.numel() == 1 else v.tolist()



# --------------------------------------------------------------------------- losses

def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """``KL(softmax(t/τ) || softmax(s/τ))``, batch mean (Hinton et al.)."""
    return F.kl_div(F.log_softmax(student_logits / tau, 1), F.log_softmax(teacher_logits / tau, 1),
                    reduction="batchmean", log_target=True)


def natural_step(model: nn.Module) -> StepFn:
    def step(x, y):
        return F.cross_entropy(model(x), y), {}

    return step


def adversarial_step(model: nn.Module, attack: str, eps: float, pgd_steps: int, generator: torch.Generator) -> StepFn:
    """Cross-entropy on adversarial inputs crafted against ``model`` (FGSM/PGD, random start)."""

    def step(x, y):
        return F.cross_entropy(model(perturb(model, x, y, attack, eps, steps=pgd_steps, generator=generator)), y), {}

    return step


def distill_step(student: nn.Module, teacher: nn.Module, *, attack: str, eps: float, pgd_steps: int,
                 alpha_kd: float, tau: float, generator: torch.Generator) -> StepFn:
    """Stage 3 loss: ``α τ² KL(T(x')/τ || S(x')/τ) + (1-α) CE(S(x'), y)`` with ``x'`` adversarial
    against the student (``x' = x`` when ``attack`` is 'none')."""

    def step(x, y):
        xa = perturb(student, x, y, attack, eps, steps=pgd_steps, generator=generator)
        out = student(xa)
        ce = F.cross_entropy(out, y)
        if alpha_kd == 0:
            return ce, {"ce": ce}
        with torch.no_grad():
            t = teacher(xa)
        kd = kd_loss(out, t, tau)
        return alpha_kd * tau * tau * kd + (1 - alpha_kd) * ce, {"ce": ce, "kd": kd}

    return step
