"""Model registry. Every model takes inputs in [0, 1] and normalises inside itself,
so attacks can use the box (0, 1) directly.

Besides the registry's own models, a run can name ``torchvision:NAME`` (any torchvision
classification architecture, :mod:`deadwood.models.zoo`) or ``user:<digest>``, a network handed to
:func:`deadwood.prune` and registered in this process (:func:`register_model`). Those two
normalise through a forward pre-hook (:func:`normalize_inputs`), so their state_dicts are
exactly the architecture's own and a user's checkpoint loads as it is.

Prunable tensors are the weights of the Linear and Conv2d layers (deadwood.pruning.masks.prunable);
biases and BatchNorm parameters are never pruned.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..data.datasets import DatasetInfo
from ..errors import ConfigError


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; buffers, so they travel in the state_dict."""

    def __init__(self, mean, std, image: bool):
        super().__init__()
        shape = (-1, 1, 1) if image else (-1,)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, x):
        return (x - self.mean) / self.std


def mlp(info: DatasetInfo, hidden: tuple[int, ...] = (256, 128)) -> nn.Module:
    layers: list[nn.Module] = [Normalize(info.mean, info.std, info.is_image), nn.Flatten()]
    width = 1
    for d in info.input_shape:
        width *= d
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, info.num_classes))
    return nn.Sequential(*layers)


def lenet5(info: DatasetInfo) -> nn.Module:
    c, h, _ = info.input_shape
    pad = 2 if h == 28 else 0  # the classic trick: 28x28 MNIST padded to LeNet's 32x32
    return nn.Sequential(
        Normalize(info.mean, info.std, True),
        nn.Conv2d(c, 6, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, info.num_classes),
    )


def convnet(info: DatasetInfo) -> nn.Module:
    c = info.input_shape[0]
    return nn.Sequential(
        Normalize(info.mean, info.std, True),
        nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(64 * 16, 128), nn.ReLU(),
        nn.Linear(128, info.num_classes),
    )


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg(info: DatasetInfo, cfg=_VGG16) -> nn.Module:
    layers: list[nn.Module] = [Normalize(info.mean, info.std, True)]
    c = info.input_shape[0]
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU()]
            c = v
    layers += [nn.Flatten(), nn.Linear(c, info.num_classes)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet-20: three stages of three basic blocks (16, 32, 64 channels)."""

    def __init__(self, info: DatasetInfo):
        super().__init__()
        self.normalize = Normalize(info.mean, info.std, True)
        self.conv = nn.Conv2d(info.input_shape[0], 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, info.num_classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(self.normalize(x))))
        x = self.blocks(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


# --------------------------------------------------------------------------- registry

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
    build: Callable[[DatasetInfo], nn.Module]
    fits: Callable[[DatasetInfo], str | None]
    about: str


REGISTRY: dict[str, ModelSpec] = {
    "mlp": ModelSpec(mlp, _any, "two hidden ReLU layers (256, 128); any input"),
    "lenet5": ModelSpec(lenet5, _sides(28, 32), "LeNet-5 for 28x28 or 32x32 images"),
    "convnet": ModelSpec(convnet, _images(8), "three 3x3 conv layers and two dense layers; images 8x8 and up"),
    "vgg": ModelSpec(vgg, _sides(32), "VGG-16 with BatchNorm for 32x32 images"),
    "resnet20": ModelSpec(ResNet20, _sides(32), "CIFAR ResNet-20 for 32x32 images"),
}


TORCHVISION = "torchvision:"
USER = "user:"
_USER_MODELS: dict[str, nn.Module] = {}


def model_names() -> list[str]:
    """The registry's models; any ``torchvision:NAME`` is a model too (deadwood.models.zoo.torchvision_names)."""
    return list(REGISTRY)


def model_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model '{name}'; choose one of: {', '.join(REGISTRY)}, "
                          f"or {TORCHVISION}NAME for a torchvision architecture") from None


def check_fits(name: str, info: DatasetInfo) -> None:
    """Raise ConfigError when model ``name`` cannot take inputs of dataset ``info``."""
    if name.startswith(TORCHVISION):
        if not info.is_image:
            raise ConfigError(f"model '{name}' needs image inputs (C, H, W), but '{info.name}' has vector "
                              f"inputs of shape {info.input_shape}")
        _probe_torchvision(name[len(TORCHVISION):], info.input_shape, info.num_classes)
        return
    if name.startswith(USER):
        user_model(name)
        return
    reason = model_spec(name).fits(info)
    if reason:
        raise ConfigError(f"model '{name}' does not fit dataset '{info.name}': it {reason}")


@functools.lru_cache(maxsize=32)
def _probe_torchvision(arch: str, input_shape: tuple, num_classes: int) -> None:
    from .zoo import build_torchvision

    with torch.random.fork_rng(devices=[]):
        build_torchvision(arch, input_shape, num_classes)  # raises ConfigError when it does not fit


def build_model(name: str, info: DatasetInfo, seed: int | None = None) -> nn.Module:
    """A freshly initialised model ``name`` for dataset ``info`` (seeded when ``seed`` is given);
    a registered user model comes with the weights it was handed over with."""
    check_fits(name, info)
    if name.startswith(USER):
        return copy.deepcopy(user_model(name))
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _build(name, info)
    return _build(name, info)


def _build(name: str, info: DatasetInfo) -> nn.Module:
    if name.startswith(TORCHVISION):
        from .zoo import build_torchvision

        model = build_torchvision(name[len(TORCHVISION):], info.input_shape, info.num_classes)
        return normalize_inputs(model, info.mean, info.std)
    return model_spec(name).build(info)


def model_for(config, seed: int | None = None) -> nn.Module:
    """``config``'s model for ``config``'s data, its prunable layers narrowed to
    ``config.prune_layers`` (deadwood.pruning.masks.select_layers)."""
    from ..pruning.masks import select_layers

    model = build_model(config.model, config.data_info(), seed=seed)
    return select_layers(model, config.prune_layers.include, config.prune_layers.exclude)


# --------------------------------------------------------------------------- user models

class _NormalizeInputs:
    """A forward pre-hook: ``(x - mean) / std`` per channel (dimension 1) before the model sees ``x``."""

    def __init__(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)

    def __call__(self, module, args):
        x, *rest = args
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        shape = (-1,) + (1,) * (x.dim() - 2)
        return ((x - self.mean.view(shape)) / self.std.view(shape), *rest)


def normalize_inputs(model: nn.Module, mean, std) -> nn.Module:
    """Make ``model`` take inputs in [0, 1]: it normalises them by ``mean``/``std`` per channel in
    a forward pre-hook, which leaves its state_dict as it was."""
    model.register_forward_pre_hook(_NormalizeInputs(mean, std))
    return model


def without_normalization(model: nn.Module) -> nn.Module:
    """``model`` with the hook of :func:`normalize_inputs` removed (in place): plain torch again."""
    for key, hook in list(model._forward_pre_hooks.items()):
        if isinstance(hook, _NormalizeInputs):
            del model._forward_pre_hooks[key]
    return model


def register_model(model: nn.Module, mean=None, std=None) -> str:
    """Register ``model`` (architecture and weights, copied; normalising its inputs by ``mean`` and
    ``std`` when given) under a name that is a digest of all of it, and return the name:
    ``build_model(name, ...)`` is then a copy of it, in this process."""
    from ..data.digest import tensors_digest

    head = f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}\n{mean}/{std}"
    name = USER + tensors_digest(head, model.state_dict().items())
    if name not in _USER_MODELS:
        copied = copy.deepcopy(model).cpu().eval()
        if mean is not None:
            mean, std = tuple(map(float, mean)), tuple(map(float, std))
            if len(mean) != len(std) or not all(s > 0 for s in std):
                raise ConfigError(f"mean and std need one value per channel, std > 0; got {mean} and {std}")
            normalize_inputs(copied, mean, std)
        _USER_MODELS[name] = copied
    return name


def user_model(name: str) -> nn.Module:
    """The network registered as ``name`` (:func:`register_model`), itself: copy it before changing it."""
    try:
        return _USER_MODELS[name]
    except KeyError:
        raise ConfigError(f"model '{name}' is a network handed to deadwood.prune in another process; "
                          "pass it to deadwood.prune again to use it") from None
