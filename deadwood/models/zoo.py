"""torchvision's classification architectures, built untrained and fitted to a dataset's input and
classes, and the registry entry of every ``torchvision:NAME`` model.

Nothing here ever downloads: every model is built with ``weights=None``. :func:`build_torchvision`
returns a module that takes inputs in [0, 1] as they are and does not normalise; the registry entry
wraps it (:func:`deadwood.models.user.normalize_inputs`).
"""
from __future__ import annotations

import difflib
import functools
import re

import torch
from torch import nn

from ..data.registry import DatasetInfo
from ..errors import ConfigError
from .user import normalize_inputs

TORCHVISION = "torchvision:"
# ResNet-style models whose stem (7x7 stride-2 conv, then a stride-2 max-pool) shrinks a small image 4x
# before the first block; below this side length they get the CIFAR stem instead.
_RESNET = re.compile(r"^(resnet|resnext|wide_resnet)\d")
_SMALL_SIDE = 64


def _models():
    """``torchvision.models``, imported on first use: it takes about a second and a half, which a
    process that never builds a torchvision architecture (the CLI's start, an app worker) is spared."""
    import torchvision.models

    return torchvision.models


def torchvision_names() -> list[str]:
    """The classification architectures torchvision offers, sorted (``list_models(module=models)``)."""
    models = _models()
    return sorted(models.list_models(module=models))


def build_torchvision(name: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """torchvision's ``name`` with random weights and ``num_classes`` outputs, for inputs of ``input_shape``
    (C, H, W), checked by one forward pass.

    Adaptations, each the usual one, and each keeping torchvision's parameter names so that a
    state_dict trained on the same adaptation loads:

    - ``C != 3``: the first ``Conv2d`` (the stem, in every torchvision classifier) is replaced by one
      with ``C`` input channels and otherwise the same settings. Rebuilding the stem, rather than
      repeating a grey channel three times in front of it, keeps the weights the network really uses
      (a repeat would carry three times the stem weights for one channel of information).
    - ResNet family (``resnet*``, ``resnext*``, ``wide_resnet*``) below 64 px: the CIFAR stem, a 3x3
      stride-1 first conv and no max-pool, so a 32x32 image is not 8x8 before the first block.
    - ``googlenet`` and ``inception_v3``: no auxiliary heads, so the output is one tensor in training too.
    - ``vit_*`` on a square input: ``image_size`` set to the input's side (it must divide by the patch).

    The probe is a forward pass on zeros of shape ``(2, *input_shape)`` in eval mode without gradients;
    the model is returned in training mode, as torchvision builds it. Raises :class:`ConfigError` for an
    unknown name (with the closest names), or when the probe fails or does not give ``(2, num_classes)``.
    """
    check_architecture(name)
    channels, height, width = input_shape
    kwargs = {}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=True)
    if name.startswith("vit_") and height == width:
        kwargs["image_size"] = height
    size = f"{channels}x{height}x{width}"
    try:
        model = _models().get_model(name, weights=None, num_classes=num_classes, **kwargs)
    except Exception as e:
        raise ConfigError(f"torchvision architecture '{name}' cannot be built for input {size}: "
                          f"{_first_line(e)}") from None
    if _RESNET.match(name) and min(height, width) < _SMALL_SIDE:
        model.conv1 = nn.Conv2d(channels, model.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif channels != 3:
        _set_stem_channels(model, channels)
    _probe(model, name, input_shape, num_classes)
    return model


def check_architecture(name: str) -> None:
    """ConfigError, with the closest names, unless torchvision offers the classifier ``name`` (builds nothing)."""
    names = torchvision_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"closest: {', '.join(close)}; " if close else ""
        raise ConfigError(f"unknown torchvision architecture '{name}' ({hint}"
                          "list them all with deadwood.models.zoo.torchvision_names())")


class TorchvisionModels:
    """The registry entry of every ``torchvision:NAME`` model: torchvision's ``NAME``, fitted to the data."""

    def known(self, name: str) -> None:
        check_architecture(name[len(TORCHVISION):])

    def check(self, name: str, info: DatasetInfo) -> None:
        """Builds and probes the network (:func:`build_torchvision`), once per process and input."""
        if not info.is_image:
            raise ConfigError(f"model '{name}' needs image inputs (C, H, W), but '{info.name}' has vector "
                              f"inputs of shape {info.input_shape}")
        _fits_once(name[len(TORCHVISION):], info.input_shape, info.num_classes)

    def make(self, name: str, info: DatasetInfo) -> nn.Module:
        model = build_torchvision(name[len(TORCHVISION):], info.input_shape, info.num_classes)
        return normalize_inputs(model, info.mean, info.std)


@functools.lru_cache(maxsize=32)
def _fits_once(arch: str, input_shape: tuple, num_classes: int) -> None:
    with torch.random.fork_rng(devices=[]):  # the probe's initialisation leaves the caller's RNG alone
        build_torchvision(arch, input_shape, num_classes)  # raises ConfigError when it does not fit


def _set_stem_channels(model: nn.Module, channels: int) -> None:
    """Replace the first Conv2d of ``model`` by one taking ``channels`` input channels (same settings)."""
    path, old = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), (None, None))
    if old is None:  # no torchvision classifier lacks one; a guard for future ones
        raise ConfigError(f"{type(model).__name__} has no Conv2d stem to adapt to {channels} input channels")
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    new = nn.Conv2d(channels, old.out_channels, old.kernel_size, stride=old.stride, padding=old.padding,
                    dilation=old.dilation, groups=1, bias=old.bias is not None, padding_mode=old.padding_mode)
    setattr(parent, attr, new)


def _probe(model: nn.Module, name: str, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """ConfigError unless ``model`` maps zeros of shape (2, *input_shape) to (2, num_classes)."""
    size = "x".join(str(s) for s in input_shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except Exception as e:
        raise ConfigError(f"torchvision architecture '{name}' does not run on input {size}: {_first_line(e)}") from None
    finally:
        model.train(was_training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (2, num_classes):
        raise ConfigError(f"torchvision architecture '{name}' on input {size} gives output {shape}, "
                          f"not (batch, {num_classes})")


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
