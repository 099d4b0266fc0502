"""The state a model and the random stream are in while an evaluation attack runs, and restored
to afterwards: shared by every attack kind and both backends.

While attacked, a model is in eval mode with its parameters frozen (foolbox back-propagates with
``loss.backward()``, which would otherwise also compute, and accumulate, every weight gradient).
Random starts are drawn from the seed and the batch index only, so the number at one ε does not
depend on which other epsilons are in the sweep, and two models evaluated with the same seed,
samples and batch size see the same random starts.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..device import model_device, resolve_device
from ..errors import ModelOutputError


def resolve(model: nn.Module, device) -> torch.device:
    """``device`` None: where the model lives; otherwise as every run resolves it."""
    return model_device(model) if device is None else resolve_device(device)


@contextlib.contextmanager
def frozen(model: nn.Module, device):
    """``model`` on ``device``, in eval mode, parameters frozen; everything restored on exit.
    Yields the device."""
    dev = resolve(model, device)
    params = list(model.parameters())
    was_training, grads = model.training, [p.requires_grad for p in params]
    home = params[0].device if params else dev
    model.eval()
    if home != dev:  # .to() walks every tensor even when nothing moves; skip it when nothing would
        model.to(dev)
    for p in params:
        p.requires_grad_(False)
    try:
        yield dev
    finally:
        for p, g in zip(params, grads):
            p.requires_grad_(g)
        if home != dev:
            model.to(home)
        model.train(was_training)


def batch_seed(seed: int, batch: int) -> int:
    """The seed of one batch's random starts: a function of ``(seed, batch)`` only."""
    return (seed * 1_000_003 + batch) % (2 ** 63)


@contextlib.contextmanager
def seeded(seed: int, batch: int, device: torch.device):
    """The global RNG (foolbox and torchattacks draw their random starts from it) seeded from
    ``(seed, batch)``, restored on exit so that evaluating never changes the caller's random stream."""
    # Not torch.manual_seed / fork_rng: they also visit every lazy accelerator backend, and
    # format a stack trace each time they do (a millisecond per call, per epsilon and batch).
    s = batch_seed(seed, batch)
    cuda = device.type == "cuda"
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(device) if cuda else None
    torch.default_generator.manual_seed(s)
    if cuda:
        with torch.cuda.device(device):
            torch.cuda.manual_seed(s)
    try:
        yield
    finally:
        torch.set_rng_state(cpu_state)
        if cuda:
            torch.cuda.set_rng_state(cuda_state, device)


def check_finite(logits: torch.Tensor, batch: int) -> None:
    """:class:`ModelOutputError` when any sample's logits are NaN or infinite: no accuracy is defined."""
    bad = int((~torch.isfinite(logits)).any(dim=1).sum())
    if bad:
        raise ModelOutputError(f"the model's logits are not finite (NaN or infinite) for {bad} of {len(logits)} "
                               f"samples in batch {batch}: its accuracy, robust or clean, is not defined")
