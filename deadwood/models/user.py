"""Networks handed to :func:`deadwood.prune`, registered in this process under ``user:<digest>`` (a
hash of architecture and weights), and the input normalisation they and torchvision's networks
get: a forward pre-hook, which leaves a state_dict exactly the architecture's own, so a user's
checkpoint loads as it is.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..data.registry import DatasetInfo
from ..errors import ConfigError

USER = "user:"
_USER_MODELS: dict[str, nn.Module] = {}


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


class UserModels:
    """The registry entry of every ``user:`` name: a copy of the network as it was handed over
    (its weights included; it was checked against the data when handed over)."""

    def known(self, name: str) -> None:
        user_model(name)

    def check(self, name: str, info: DatasetInfo) -> None:
        user_model(name)

    def make(self, name: str, info: DatasetInfo) -> nn.Module:
        return copy.deepcopy(user_model(name))
