"""Deadwooding as a library: :func:`prune` your own trained network on your own data.

The network and the data are registered in this process under digests of their content
(:func:`deadwood.models.user.register_model`, :func:`deadwood.data.arrays.register_arrays`), and the run is an
ordinary :class:`deadwood.RunConfig` through :func:`deadwood.run`: the same stages, the same
cache, the same :class:`deadwood.RunRecord` as a run from the CLI. Asking again with the same
network, data and settings is a cache look-up.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .config import RunConfig, TeacherConfig, resolve, with_updates
from .errors import ConfigError, DatasetFileError
from .events import OnEvent
from .pruning.masks import Mask, clear_selection

_RANGE_SLACK = 1e-6  # inputs may stray this far outside [0, 1] (float rounding of x / 255)


@dataclass
class Pruned:
    """What :func:`prune` returns."""

    model: nn.Module  # the pruned network: the input's class, pruned weights exactly zero, plain torch
    mask: Mask  # True where a prunable weight is kept
    teacher: nn.Module  # the dense network the run pruned (trained first when train_teacher=True)
    record: Any  # the run's RunRecord (multipliers, violations, per-layer sparsity, accuracies, timings)
    path: Path  # the run's folder in the cache


def prune(model: nn.Module, train, test, *, method: str = "deadwooding", sparsity: float = 0.95,
          epsilon: float = 0.1, budget: str = "matched", overrides: Optional[Mapping[str, Any]] = None,
          on_event: OnEvent = None, train_teacher: bool = False,
          prune_layers: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
          mean: Sequence[float] | None = None, std: Sequence[float] | None = None, seed: int = 0,
          device: str = "auto", cache_dir=None) -> Pruned:
    """Prune ``model`` with ``method`` to ``sparsity``, judged at attack budget ``epsilon``.

    ``model`` is the teacher as given (already trained); with ``train_teacher=True`` it is trained
    first from its current weights with the Stage 0 settings (``overrides["teacher.epochs"]``...).
    Its prunable layers are its ``nn.Linear`` and ``nn.Conv2d`` layers, narrowed by
    ``prune_layers``: a list of module-name patterns to include, or ``{"include": [...],
    "exclude": [...]}``. ``train`` and ``test`` are torch Datasets or DataLoaders yielding
    ``(x, y)``, or ``(x, y)`` tensor pairs, with inputs in [0, 1]; the model normalises inside
    itself, or give ``mean`` and ``std`` per channel. ``overrides`` maps dotted configuration names
    to values (``{"deadwooding.dual_step": 0.1, "finetune.epochs": 5}``). ``budget`` is the training
    protocol after the teacher (:mod:`deadwood.methods.budget`): 'matched' gives every method
    Deadwooding's epochs (its solve's plus its fine-tune's), 'finetune' fine-tunes every method
    ``finetune.epochs``; the record's ``train_epochs`` says what the run trained, by stage and in
    optimiser steps. ``on_event`` receives the run's :class:`deadwood.Event` progress.

    Every problem with the input is a :class:`deadwood.DeadwoodError` raised before anything is
    written to the cache.
    """
    from .data.arrays import register_arrays
    from .models.registry import model_for
    from .models.user import register_model
    from .pipeline import run

    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if (mean is None) != (std is None):
        raise ConfigError("give both mean and std (per channel), or neither")
    train_xy, test_xy = _arrays(train, "train"), _arrays(test, "test")
    classes = _classes(train, train_xy[1])
    _check_labels(train_xy[1], len(classes), "train")
    _check_labels(test_xy[1], len(classes), "test")
    registered = register_model(model, mean=mean, std=std)
    _check_output(registered, train_xy[0][:8], len(classes))
    dataset = register_arrays(train_xy, test_xy, classes)

    config = RunConfig(dataset=dataset, model=registered, method=method, sparsity=sparsity, epsilon=epsilon,
                       seed=seed, device=device, budget=budget,
                       teacher=TeacherConfig() if train_teacher else TeacherConfig(epochs=0))
    updates = dict(overrides or {})
    if not train_teacher and updates.get("teacher.epochs", 0) != 0:
        raise ConfigError("teacher.epochs trains the given network first: pass train_teacher=True with it")
    updates.update(_layer_updates(prune_layers))
    config = resolve(with_updates(config, **updates))
    model_for(config)  # a pattern that matches nothing, or no layer at all, fails here
    loaded = run(config, on_event=on_event, cache_dir=cache_dir)
    pruned = _plain(copy.deepcopy(loaded.model))
    return Pruned(model=pruned, mask=Mask.from_model(loaded.model), teacher=_plain(loaded.dense()),
                  record=loaded.record, path=loaded.path)


def _plain(model: nn.Module) -> nn.Module:
    """``model`` as the user's own class and nothing else: no input hook, no layer choice."""
    from .models.user import without_normalization

    return clear_selection(without_normalization(model))


def _layer_updates(prune_layers) -> dict:
    if prune_layers is None:
        return {}
    if isinstance(prune_layers, str):
        prune_layers = [prune_layers]
    if isinstance(prune_layers, Mapping):
        unknown = set(prune_layers) - {"include", "exclude"}
        if unknown:
            raise ConfigError(f"prune_layers takes 'include' and 'exclude', not {sorted(unknown)}")
        return {f"prune_layers.{k}": tuple(v) for k, v in prune_layers.items()}
    return {"prune_layers.include": tuple(prune_layers)}


def _batches(data, split: str):
    """``(x, y)`` batches of ``data``: a DataLoader, a Dataset (read 256 at a time) or an ``(x, y)`` pair."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        yield data
        return
    if isinstance(data, Dataset) and not isinstance(data, DataLoader):
        data = DataLoader(data, batch_size=256, shuffle=False)
    if not isinstance(data, DataLoader):
        raise ConfigError(f"{split} must be a torch Dataset, a DataLoader, or an (x, y) pair of tensors; "
                          f"got {type(data).__name__}")
    try:
        for item in data:
            yield item
    except TypeError as e:  # default_collate on something that is not a tensor (a PIL image...)
        raise ConfigError(f"{split}: its samples could not be batched ({str(e).splitlines()[0]}); "
                          "inputs must be tensors, e.g. add torchvision.transforms.ToTensor()") from None


def _arrays(data, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All of ``data`` as two CPU tensors, checked: pairs, float inputs in [0, 1], integer labels."""
    xs, ys = [], []
    for item in _batches(data, split):
        if isinstance(item, Mapping):
            raise ConfigError(f"{split} yields dicts (keys {sorted(item)}); deadwood needs (x, y) pairs")
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            what = f"{len(item)}-tuples" if isinstance(item, (tuple, list)) else type(item).__name__ + "s"
            raise ConfigError(f"{split} yields {what}; deadwood needs (x, y) pairs")
        x, y = item
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise ConfigError(f"{split} yields {type(x).__name__} inputs and {type(y).__name__} labels; "
                              "both must be tensors")
        xs.append(x.detach().cpu())
        ys.append(y.detach().cpu().reshape(-1))
    if not xs:
        raise ConfigError(f"{split} is empty")
    x, y = torch.cat(xs), torch.cat(ys)
    if len(x) != len(y):
        raise ConfigError(f"{split} has {len(x)} inputs but {len(y)} labels")
    if not x.is_floating_point():
        raise ConfigError(f"{split} inputs are {x.dtype}; deadwood needs floats in [0, 1] "
                          "(e.g. torchvision.transforms.ToTensor())")
    x = x.float()
    if not torch.isfinite(x).all():
        raise DatasetFileError(f"{split} inputs hold NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
        raise ConfigError(f"{split} inputs lie in [{low:.3g}, {high:.3g}], not in [0, 1]: attacks clip to [0, 1], "
                          "so normalisation belongs inside the model, or pass mean= and std= to deadwood.prune")
    if y.is_floating_point():
        if not torch.equal(y, y.round()):
            raise ConfigError(f"{split} labels are not whole numbers; deadwood needs class indices 0..C-1")
    elif y.dtype == torch.bool or y.is_complex():
        raise ConfigError(f"{split} labels are {y.dtype}; deadwood needs class indices 0..C-1")
    return x.clamp(0, 1), y.long()


def _classes(train, y: torch.Tensor) -> tuple[str, ...]:
    """The class names: the dataset's ``classes`` when it has them, else 0..max(label)."""
    ds = train.dataset if isinstance(train, DataLoader) else train
    names = getattr(ds, "classes", None)
    if isinstance(names, (list, tuple)) and names:
        return tuple(map(str, names))
    return tuple(str(i) for i in range(int(y.max()) + 1 if len(y) else 0))


def _check_labels(y: torch.Tensor, count: int, split: str) -> None:
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= count:
        raise ConfigError(f"{split} labels run from {low} to {high}; with {count} classes they must be 0..{count - 1}")
    if count < 2:
        raise ConfigError(f"{split} holds one class only; classification needs at least two")


@torch.no_grad()
def _check_output(name: str, x: torch.Tensor, count: int) -> None:
    from .models.user import user_model

    model = user_model(name)
    try:
        out = model(x)
    except Exception as e:  # the user's forward: any failure is theirs to see, in one line
        raise ConfigError(f"the model fails on the training inputs of shape {tuple(x.shape)}: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"the model must return logits of shape (batch, classes), got {shape}")
    if out.shape[1] != count:
        raise ConfigError(f"the model has {out.shape[1]} outputs but the data has {count} classes")
