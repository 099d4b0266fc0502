"""The dataset registry: every name a run may give as its dataset leads to one entry here.

An entry is one kind of data and answers three questions for a name: its :class:`DatasetInfo`
(shape and classes; an image folder is scanned for them), its digest (what the data is, by content,
for the cache keys) and its splits as tensors. Entries are *named* (``digits``, ``folder``: the
name itself) or *prefixed* (``user:<digest>``: every name that starts so); a name that is neither
is refused with the known names. :mod:`deadwood.data.datasets` puts the built-in entries here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..errors import ConfigError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset before any file is read."""

    name: str
    input_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for vectors
    num_classes: int
    mean: tuple[float, ...]  # per channel, used by the normalisation layer inside models
    std: tuple[float, ...]
    embedded: bool  # needs no files
    files: tuple[str, ...] = ()  # paths under data_dir that must exist (for error messages)
    classes: tuple[str, ...] = ()

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3


class DatasetEntry(Protocol):
    """One kind of data. ``embedded``: needs no files (the menus and messages say so)."""

    embedded: bool

    def known(self, name: str) -> None:
        """Raise ConfigError when ``name`` cannot be used in this process (a value check: reads nothing)."""

    def info(self, name: str, data_dir, image_size: int) -> DatasetInfo:
        """Shape and classes, without reading the data (a folder is scanned)."""

    def digest(self, name: str, data_dir, seed: int, image_size: int) -> str:
        """What the data is, by content, for the cache keys."""

    def load(self, name: str, split: str, data_dir, seed: int, download: bool,
             image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``split`` as float32 inputs in [0, 1] and int64 labels."""


_NAMED: dict[str, DatasetEntry] = {}
_PREFIXES: dict[str, DatasetEntry] = {}


def register(entry: DatasetEntry, *, name: str | None = None, prefix: str | None = None) -> None:
    """Put ``entry`` in the registry under the dataset ``name``, or for every name starting with ``prefix``."""
    if (name is None) == (prefix is None):
        raise ValueError("register a dataset entry under a name or a prefix")
    if name is not None:
        _NAMED[name] = entry
    else:
        _PREFIXES[prefix] = entry


def lookup(name: str) -> DatasetEntry:
    """The entry of dataset ``name``; ConfigError naming the known datasets when there is none."""
    entry = _NAMED.get(name) if isinstance(name, str) else None
    if entry is None and isinstance(name, str):
        entry = next((e for p, e in _PREFIXES.items() if name.startswith(p)), None)
    if entry is None:
        raise ConfigError(f"unknown dataset '{name}'; choose one of: {', '.join(dataset_names())}")
    return entry


def dataset_names() -> list[str]:
    """The named datasets, in the order users see them (prefixed ones are made, not chosen)."""
    return list(_NAMED)


def embedded_datasets() -> list[str]:
    return [n for n, e in _NAMED.items() if e.embedded]


def read_once(read, *key) -> tuple[torch.Tensor, torch.Tensor]:
    """``read(*key)``'s ``(x, y)`` as float32 and int64 tensors, read once per process and ``key``
    (an entry puts in ``key`` whatever decides the arrays, e.g. a folder's digest, so changed
    files are read again)."""
    return _read_once(read, *key)


@functools.lru_cache(maxsize=16)
def _read_once(read, *key):
    x, y = read(*key)
    x = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    y = torch.as_tensor(np.ascontiguousarray(y, dtype=np.int64))
    # Every caller in this process shares these tensors: nobody may edit them in place. They stay
    # writable because torch has no read-only tensors, and a copy per caller would hold each dataset twice.
    return x, y
