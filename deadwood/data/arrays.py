"""Arrays handed to :func:`deadwood.prune`: registered in this process under ``user:<digest>``, a
name that is a digest of the tensors, so the same data always gets the same name (and cache keys)."""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .registry import DatasetInfo

USER = "user:"
_USER_DATA: dict[str, tuple[DatasetInfo, dict]] = {}


def register_arrays(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                    classes: tuple[str, ...]) -> str:
    """Register in-memory data (``(x, y)`` per split, checked by the caller) under a name that is a
    digest of its tensors, and return the name: the same data always gets the same name."""
    from .digest import tensors_digest

    parts = {"train x": train[0], "train y": train[1], "test x": test[0], "test y": test[1]}
    name = USER + tensors_digest(repr(classes), parts.items())
    x0 = train[0]
    info = DatasetInfo(name, tuple(x0.shape[1:]), len(classes), (0.0,), (1.0,), True, classes=tuple(classes))
    _USER_DATA[name] = (info, {"train": train, "test": test})
    return name


class UserArrays:
    """The registry entry of every ``user:`` name: the arrays as they were handed over."""

    embedded = True

    def known(self, name: str) -> None:
        self._registered(name)

    def info(self, name: str, data_dir=None, image_size: int = 32) -> DatasetInfo:
        return self._registered(name)[0]

    def digest(self, name: str, data_dir=None, seed: int = 0, image_size: int = 32) -> str:
        self._registered(name)
        return name  # the name is the digest of the tensors

    def load(self, name: str, split: str, data_dir=None, seed: int = 0, download: bool = False,
             image_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        return self._registered(name)[1][split]

    @staticmethod
    def _registered(name: str):
        try:
            return _USER_DATA[name]
        except KeyError:
            raise ConfigError(f"dataset '{name}' is data handed to deadwood.prune in another process; "
                              "pass it to deadwood.prune again to use it") from None
