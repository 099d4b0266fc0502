"""Datasets as the engine uses them: every dataset is a pair of tensors with inputs in [0, 1], reached
by name through the registry (:mod:`deadwood.data.registry`), whose built-in entries are put there
here: the named sets (:mod:`.named`), ``folder`` (:mod:`.image_folder`) and ``user:`` (:mod:`.arrays`).

All sets are small enough to sit in memory as one tensor, which makes an epoch a loop over index
slices instead of a DataLoader (on the embedded data that is several times faster than per-sample
collation).
"""
from __future__ import annotations

import os
from typing import Iterator

import torch
from torch.utils.data import Dataset

from ..errors import ConfigError
from . import registry
from .arrays import USER, UserArrays, register_arrays
from .image_folder import FOLDER, FolderEntry
from .named import NAMED
from .registry import SPLITS, DatasetInfo, dataset_names, embedded_datasets

__all__ = ["ArrayDataset", "DatasetInfo", "FOLDER", "SPLITS", "USER", "batches", "data_digest", "dataset_info",
           "dataset_names", "embedded_datasets", "load_dataset", "load_split", "register_arrays"]

for _name, _entry in NAMED.items():
    registry.register(_entry, name=_name)
registry.register(FolderEntry(), name=FOLDER)
registry.register(UserArrays(), prefix=USER)


class ArrayDataset(Dataset):
    """``(x, y)`` pairs held as two tensors; ``x`` in [0, 1], ``y`` int64 class labels."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, info: DatasetInfo, split: str):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels")
        self.x, self.y, self.info, self.split = x, y, info, split

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def to(self, device) -> "ArrayDataset":
        return ArrayDataset(self.x.to(device), self.y.to(device), self.info, self.split)

    def subset(self, n: int | None, seed: int = 0) -> "ArrayDataset":
        """The first ``n`` samples of a fixed permutation (all of them when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n].to(self.y.device)
        return ArrayDataset(self.x[idx], self.y[idx], self.info, self.split)


def batches(ds: ArrayDataset, batch_size: int, *, shuffle: bool = False,
            generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of ``ds`` as tensor slices (on whatever device ``ds`` lives)."""
    n = len(ds)
    if shuffle:
        order = torch.randperm(n, generator=generator).to(ds.y.device)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            yield ds.x[idx], ds.y[idx]
    else:
        for i in range(0, n, batch_size):
            yield ds.x[i:i + batch_size], ds.y[i:i + batch_size]


def dataset_info(name: str, data_dir=None, image_size: int = 32) -> DatasetInfo:
    """Static facts about a dataset (shape, classes) without reading its data: an image folder
    (``name`` 'folder') is scanned for its classes, at ``image_size``."""
    return registry.lookup(name).info(name, data_dir, image_size)


def data_digest(name: str, data_dir=None, seed: int = 0, image_size: int = 32) -> str:
    """What the data of a run is, by content, for its cache keys: a hash of the files it is read
    from (an image folder: every image's path and bytes; torchvision's sets: their files), the
    digest of arrays handed to deadwood.prune, or for the embedded sets, which are generated,
    their generator. Never the folder's path: the same data in two places share cached runs."""
    return registry.lookup(name).digest(name, data_dir, seed, image_size)


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 seed: int = 0, download: bool = False, image_size: int = 32) -> ArrayDataset:
    """Load ``split`` ('train' or 'test') of dataset ``name`` as an :class:`ArrayDataset`.

    ``seed`` fixes the stratified train/test split of the embedded sets and of an image folder
    that is one tree (the torchvision sets come with their own split). Inputs are float32 in
    [0, 1]. Raises :class:`DatasetNotFound` with the expected files when they are absent.
    """
    entry = registry.lookup(name)
    info = entry.info(name, data_dir, image_size)
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'; choose 'train' or 'test'")
    x, y = entry.load(name, split, data_dir, seed, download, image_size)
    return ArrayDataset(x, y, info, split)


def load_split(config, split: str) -> ArrayDataset:
    """``split`` of the data a :class:`deadwood.RunConfig` names (its dataset, folder, seed, size)."""
    return load_dataset(config.dataset, split, config.data_dir, config.seed, config.download, config.image_size)
