"""The model registry: every name a run may give as its model leads to one entry here.

An entry answers three things for a name: whether it is known (a value check that builds
nothing), whether it fits a dataset (a torchvision network is built and probed for it, once per
process and input) and a fresh network for that data. Entries are *named*, the registry's own
networks (:data:`REGISTRY`, from :mod:`.networks`), or *prefixed*: ``torchvision:NAME``, any
torchvision classification architecture (:mod:`.zoo`), and ``user:<digest>``, a network handed to
:func:`deadwood.prune` (:mod:`.user`). Those two normalise through a forward pre-hook
(:func:`normalize_inputs`), so their state_dicts are exactly the architecture's own.

Prunable tensors are the weights of the Linear and Conv2d layers (deadwood.pruning.masks.prunable);
biases and BatchNorm parameters are never pruned.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import nn

from ..data.registry import DatasetInfo
from ..errors import ConfigError
from .networks import ResNet20, convnet, lenet5, mlp, vgg
from .user import USER, UserModels, normalize_inputs, register_model, user_model, without_normalization
from .zoo import TORCHVISION, TorchvisionModels

__all__ = ["REGISTRY", "TORCHVISION", "USER", "ModelSpec", "build_model", "check_fits", "lookup", "model_for",
           "model_names", "normalize_inputs", "register_model", "user_model", "without_normalization"]


class ModelEntry(Protocol):
    def known(self, name: str) -> None:
        """Raise ConfigError when ``name`` cannot be used in this process (builds nothing)."""

    def check(self, name: str, info: DatasetInfo) -> None:
        """Raise ConfigError when model ``name`` cannot take inputs of dataset ``info``."""

    def make(self, name: str, info: DatasetInfo) -> nn.Module:
        """A fresh network ``name`` for ``info``'s data (initialised from the global RNG)."""


def _any(info: DatasetInfo) -> str | None:
    return None


def _images(min_side: int):
    def fits(info: DatasetInfo) -> str | None:
        if not info.is_image:
            return f"needs image inputs (C, H, W), but '{info.name}' has vector inputs of shape {info.input_shape}"
        if min(info.input_shape[1:]) < min_side:
            return (f"needs images of at least {min_side}x{min_side}, but '{info.name}' is "
                    f"{info.input_shape[1]}x{info.input_shape[2]}")
        return None

    return fits


def _sides(*sides: int):
    def fits(info: DatasetInfo) -> str | None:
        reason = _images(min(sides))(info)
        if reason:
            return reason
        if info.input_shape[1] not in sides or info.input_shape[1] != info.input_shape[2]:
            want = " or ".join(f"{s}x{s}" for s in sides)
            return f"is built for {want} inputs, but '{info.name}' is {info.input_shape[1]}x{info.input_shape[2]}"
        return None

    return fits


@dataclass(frozen=True)
class ModelSpec:
    """A named entry: ``build(info)`` the network, ``fits(info)`` why it cannot take that data (or None)."""

    build: Callable[[DatasetInfo], nn.Module]
    fits: Callable[[DatasetInfo], str | None]
    about: str

    def known(self, name: str) -> None:
        return None

    def check(self, name: str, info: DatasetInfo) -> None:
        reason = self.fits(info)
        if reason:
            raise ConfigError(f"model '{name}' does not fit dataset '{info.name}': it {reason}")

    def make(self, name: str, info: DatasetInfo) -> nn.Module:
        return self.build(info)


REGISTRY: dict[str, ModelSpec] = {
    "mlp": ModelSpec(mlp, _any, "two hidden ReLU layers (256, 128); any input"),
    "lenet5": ModelSpec(lenet5, _sides(28, 32), "LeNet-5 for 28x28 or 32x32 images"),
    "convnet": ModelSpec(convnet, _images(8), "three 3x3 conv layers and two dense layers; images 8x8 and up"),
    "vgg": ModelSpec(vgg, _sides(32), "VGG-16 with BatchNorm for 32x32 images"),
    "resnet20": ModelSpec(ResNet20, _sides(32), "CIFAR ResNet-20 for 32x32 images"),
}
PREFIXES: dict[str, ModelEntry] = {TORCHVISION: TorchvisionModels(), USER: UserModels()}


def model_names() -> list[str]:
    """The registry's models; any ``torchvision:NAME`` is a model too (deadwood.models.zoo.torchvision_names)."""
    return list(REGISTRY)


def lookup(name: str) -> ModelEntry:
    """The entry of model ``name``; ConfigError naming the known models when there is none."""
    entry = REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None and isinstance(name, str):
        entry = next((e for p, e in PREFIXES.items() if name.startswith(p)), None)
    if entry is None:
        raise ConfigError(f"unknown model '{name}'; choose one of: {', '.join(REGISTRY)}, "
                          f"or {TORCHVISION}NAME for a torchvision architecture")
    return entry


def check_fits(name: str, info: DatasetInfo) -> None:
    """Raise ConfigError when model ``name`` cannot take inputs of dataset ``info``."""
    lookup(name).check(name, info)


def build_model(name: str, info: DatasetInfo, seed: int | None = None) -> nn.Module:
    """A freshly initialised model ``name`` for dataset ``info`` (seeded when ``seed`` is given);
    a registered user model comes with the weights it was handed over with."""
    entry = lookup(name)
    entry.check(name, info)
    if seed is None:
        return entry.make(name, info)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return entry.make(name, info)


def model_for(config, seed: int | None = None) -> nn.Module:
    """``config``'s model for ``config``'s data, its prunable layers narrowed to
    ``config.prune_layers`` (deadwood.pruning.masks.select_layers)."""
    from ..pruning.masks import select_layers

    model = build_model(config.model, config.data_info(), seed=seed)
    return select_layers(model, config.prune_layers.include, config.prune_layers.exclude)
