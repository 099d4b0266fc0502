"""The run record: what a run produced, enough to redraw every chart without recomputing.

A run directory holds ``record.json``, ``model.pt`` (the pruned state_dict, pruned
weights stored as zeros) and ``dense.pt`` (the teacher's state_dict).
"""
from __future__ import annotations

import json
import platform
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from .errors import RunFileError
from .store import atomic_save_state, atomic_write_json, load_state, publish_dir, staging_dir

RECORD_FILE, MODEL_FILE, DENSE_FILE = "record.json", "model.pt", "dense.pt"
SCHEMA = 1


@dataclass
class RunRecord:
    config: dict
    versions: dict
    history: list = field(default_factory=list)
    layer_sparsity: dict = field(default_factory=dict)
    layer_sizes: dict = field(default_factory=dict)
    global_sparsity: float = 0.0
    one_shot_accuracy: float = 0.0
    clean_accuracy: float = 0.0
    robustness: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    teacher: dict = field(default_factory=dict)  # the dense teacher's clean accuracy and robustness
    prune_info: dict = field(default_factory=dict)  # method report: threshold, guarded layers, ...
    deployment: dict = field(default_factory=dict)  # measured on demand: deadwood.deploy.deployment
    key: str = ""
    schema: int = SCHEMA

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        known = {f.name for f in fields(cls)}
        missing = {"config", "versions"} - set(d)
        if missing:
            raise RunFileError(f"record lacks the field(s) {sorted(missing)}")
        return cls(**{k: v for k, v in d.items() if k in known})

    def robust_accuracy(self, epsilon: float) -> float | None:
        """Robust accuracy at ``epsilon`` from the curve (None when it was not evaluated)."""
        for e, a in zip(self.robustness.get("epsilons", []), self.robustness.get("accuracy", [])):
            if abs(e - epsilon) < 1e-12:
                return a
        return None


def versions() -> dict:
    """Versions of everything that decides a run's numbers (read from package metadata,
    so nothing is imported for it: foolbox stays confined to deadwood.robustness)."""
    from importlib.metadata import PackageNotFoundError, version

    from .version import __version__

    out = {"deadwood": __version__, "python": platform.python_version()}
    for key, dist in (("torch", "torch"), ("torchvision", "torchvision"), ("foolbox", "foolbox"),
                      ("cooper", "cooper-optim")):
        try:
            out[key] = version(dist)
        except PackageNotFoundError:  # pragma: no cover - all are requirements
            out[key] = None
    return out


def sparsity_of(model: nn.Module) -> tuple[dict, dict, float]:
    """Per-layer zero fraction and size of every prunable tensor, counted from the
    model's state_dict (as saved), and the global zero fraction."""
    from .masks import prunable

    state_dict = model.state_dict()
    sizes = {n: state_dict[n].numel() for n in prunable(model)}
    zeros = {n: int((state_dict[n] == 0).sum()) for n in sizes}
    total = sum(sizes.values())
    return ({n: zeros[n] / sizes[n] for n in sizes}, sizes, sum(zeros.values()) / total if total else 0.0)


def write_run(path: Path, record: RunRecord, model: nn.Module, dense: nn.Module) -> Path:
    """Write a run directory atomically (staged in a sibling folder, then renamed)."""
    path = Path(path)
    tmp = staging_dir(path)
    try:
        atomic_save_state(tmp / MODEL_FILE, model.state_dict())
        atomic_save_state(tmp / DENSE_FILE, dense.state_dict())
        atomic_write_json(tmp / RECORD_FILE, record.to_dict())
        publish_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def update_record(path: Path, record: RunRecord) -> None:
    """Replace ``record.json`` of an existing run directory atomically."""
    atomic_write_json(Path(path) / RECORD_FILE, record.to_dict())


def copy_run(src: Path, dst: Path) -> Path:
    tmp = staging_dir(Path(dst))
    try:
        for f in (RECORD_FILE, MODEL_FILE, DENSE_FILE):
            shutil.copy2(Path(src) / f, tmp / f)
        publish_dir(tmp, Path(dst))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Path(dst)


def read_record(path: Path) -> RunRecord:
    f = Path(path) / RECORD_FILE
    if not f.is_file():
        raise RunFileError(f"no run at {path}: {RECORD_FILE} is missing")
    try:
        return RunRecord.from_dict(json.loads(f.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
        raise RunFileError(f"{f} is not a valid run record ({e})") from None


@dataclass
class LoadedRun:
    path: Path
    record: RunRecord
    model: nn.Module  # eval mode, pruned weights loaded

    @property
    def config(self):
        from .config import RunConfig

        return RunConfig.from_dict(self.record.config)

    def dense(self) -> nn.Module:
        """The teacher, loaded from ``dense.pt`` (eval mode)."""
        return _load_model(self.config, self.path / DENSE_FILE)


def _load_model(config, file: Path) -> nn.Module:
    from .data import dataset_info
    from .models import build_model

    model = build_model(config.model, dataset_info(config.dataset))
    state = load_state(file)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise RunFileError(f"{file} does not match model '{config.model}' for '{config.dataset}': "
                           f"{str(e).splitlines()[0]}") from None
    return model.eval()


def load_run(path) -> LoadedRun:
    """Load a finished run directory: its record and the pruned model (eval mode)."""
    from .config import RunConfig
    from .errors import ConfigError

    path = Path(path)
    record = read_record(path)
    try:
        config = RunConfig.from_dict(record.config)
    except (ConfigError, TypeError) as e:
        raise RunFileError(f"{path / RECORD_FILE} holds an unusable configuration: {e}") from None
    return LoadedRun(path, record, _load_model(config, path / MODEL_FILE))
