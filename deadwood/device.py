"""Where a run computes: the device a name stands for, and how many CPU threads it uses.

Every part of the engine that turns a device name into a ``torch.device`` goes through
:func:`resolve_device`, so 'auto' and a missing GPU mean the same thing everywhere.
"""
from __future__ import annotations

import contextlib
import os
import platform

import torch
from torch import nn

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but no CUDA GPU is available; use --device cpu or auto")
    return device


def model_device(model: nn.Module) -> torch.device:
    """The device ``model``'s parameters live on (CPU for a model without parameters)."""
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@contextlib.contextmanager
def cpu_threads(device: torch.device):
    """Run with ``$DEADWOOD_THREADS`` intra-op CPU threads (default 1; 0 keeps torch's choice).

    The models here are small: on a 2-core machine a second thread bought nothing idle and
    cost 10x the wall time once another process competed for the cores (OpenMP spin-waits;
    measured on the default run, 16 s against 179 s). The old setting is restored afterwards.
    """
    want = int(os.environ.get("DEADWOOD_THREADS", "1") or 1)
    if torch.device(device).type != "cpu" or want <= 0:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def device_name(device: torch.device) -> str:
    """A readable name of ``device``: the GPU's model, or the CPU's model from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


@contextlib.contextmanager
def deadwood_threads(n):
    """``$DEADWOOD_THREADS`` = ``n`` for the duration (what :func:`cpu_threads` reads in every run
    and timing inside it), restored afterwards; ``n`` None or 0 leaves it as it is."""
    if not n:
        yield
        return
    old = os.environ.get("DEADWOOD_THREADS")
    os.environ["DEADWOOD_THREADS"] = str(n)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DEADWOOD_THREADS", None)
        else:
            os.environ["DEADWOOD_THREADS"] = old
