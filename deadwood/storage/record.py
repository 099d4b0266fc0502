"""The run record: what a run produced, enough to redraw every chart without recomputing.

A run directory holds ``record.json``, ``model.pt`` (the pruned state_dict, pruned
weights stored as zeros) and ``dense.pt`` (the teacher's state_dict). docs/architecture.md
describes every field.
"""
from __future__ import annotations

import json
import math
import platform
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

from torch import nn

from ..errors import RunFileError
from .files import atomic_save_state, atomic_write_json, check_writable, load_state, staged

RECORD_FILE, MODEL_FILE, DENSE_FILE = "record.json", "model.pt", "dense.pt"
RUN_FILES = (RECORD_FILE, MODEL_FILE, DENSE_FILE)
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
    sparsity_profile: Optional[dict] = None  # one-shot accuracy at every κ (deadwood.pruning.sparsity_profile), when computed
    deployment: dict = field(default_factory=dict)  # measured on demand: deadwood.deploy.measure.deployment
    train_epochs: dict = field(default_factory=dict)  # the budget after the teacher (deadwood.methods.budget.Plan.record)
    key: str = ""
    code: str = ""  # the fingerprint of the engine code that computed it (deadwood.fingerprint)
    threads: int = 0  # CPU intra-op threads the run used (0: not recorded)
    warnings: list = field(default_factory=list)  # one line each: what makes the numbers suspect (a model at chance)
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

    from ..version import __version__

    out = {"deadwood": __version__, "python": platform.python_version()}
    for key, dist in (("torch", "torch"), ("torchvision", "torchvision"), ("foolbox", "foolbox"),
                      ("cooper", "cooper-optim")):
        try:
            out[key] = version(dist)
        except PackageNotFoundError:  # pragma: no cover - all are requirements
            out[key] = None
    return out



def write_run(path: Path, record: RunRecord, model: nn.Module, dense: nn.Module) -> Path:
    """Write a run directory atomically (:func:`deadwood.storage.files.staged`)."""
    path = Path(path)
    with staged(path) as tmp:
        atomic_save_state(tmp / MODEL_FILE, model.state_dict())
        atomic_save_state(tmp / DENSE_FILE, dense.state_dict())
        atomic_write_json(tmp / RECORD_FILE, record.to_dict())
    return path


def update_record(path: Path, record: RunRecord) -> None:
    """Replace ``record.json`` of an existing run directory atomically."""
    atomic_write_json(Path(path) / RECORD_FILE, record.to_dict())


def copy_run(src: Path, dst: Path, *, replace: bool = False) -> Path:
    """Copy the run directory ``src`` to ``dst`` atomically (:func:`deadwood.storage.files.staged`);
    ``dst`` must pass :func:`check_out`."""
    dst = check_out(dst, replace)
    with staged(dst) as tmp:
        for f in RUN_FILES:
            shutil.copy2(Path(src) / f, tmp / f)
        check_out(dst, replace)  # again: the folder may have changed while the run was computed
    return dst


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a run directory as the engine writes it: a real folder that holds a
    ``record.json`` reading as a run record, and nothing but the three run files (and the temporary
    files an interrupted atomic write of one of them leaves)."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    entries = list(path.iterdir())
    ours = set(RUN_FILES) | {p.name for p in entries if p.name.endswith(".tmp")
                             and any(p.name.startswith(f".{f}.") for f in RUN_FILES)}
    if not any(p.name == RECORD_FILE for p in entries) or not all(
            p.name in ours and p.is_file() and not p.is_symlink() for p in entries):
        return False
    try:
        d = json.loads((path / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and {"config", "versions"} <= set(d)


def check_out(path: Path, replace: bool = False) -> Path:
    """``path`` if a run directory may be written there, else :class:`RunFileError` naming it.

    Accepted: a path that does not exist yet, in a folder this process can write (or create); an
    empty folder; with ``replace``, a previous run directory (:func:`is_run_dir`). A file, a link,
    or a folder that holds anything else is never replaced. Writes nothing.
    """
    path = Path(path)
    if path.is_symlink():
        raise RunFileError(f"{path} is a link; refusing to replace it: choose a new folder")
    if path.exists():
        if not path.is_dir():
            raise RunFileError(f"{path} is a file, not a run directory; refusing to replace it: choose a new folder")
        if any(path.iterdir()):
            if not is_run_dir(path):
                raise RunFileError(f"{path} is not empty and is not a run directory; refusing to replace "
                                   f"its contents: choose a new folder")
            if not replace:
                raise RunFileError(f"{path} holds a previous run; replace it with --force, or choose a new folder")
    check_writable(path.absolute().parent)
    return path


def read_record(path: Path) -> RunRecord:
    """The record of the run directory ``path``, checked against itself (:func:`check_record`)."""
    f = Path(path) / RECORD_FILE
    if not f.is_file():
        raise RunFileError(f"no run at {path}: {RECORD_FILE} is missing")
    try:
        d = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise RunFileError(f"{f} is not a valid run record ({e})") from None
    if not isinstance(d, dict):
        raise RunFileError(f"{f} is not a valid run record (not a JSON object)")
    try:
        record = RunRecord.from_dict(d)
        problem = check_record(record)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as e:
        raise RunFileError(f"{f} is not a valid run record ({type(e).__name__}: {e})") from None
    except RunFileError as e:
        raise RunFileError(f"{f} is not a valid run record ({e})") from None
    if problem:
        raise RunFileError(f"{f} contradicts itself: {problem}")
    return record


def check_record(record: RunRecord) -> str | None:
    """What in ``record`` contradicts the rest of it (None if nothing does).

    Every sparsity and accuracy is a number in [0, 1]. In each robustness curve (the pruned
    model's, the teacher's), the accuracy at ε = 0 equals the curve's clean accuracy, unless the
    curve's own epsilon-zero check found the model non-deterministic. The clean accuracy stored
    beside a curve (``clean_accuracy``, ``teacher.clean_accuracy``) was measured on the curve's
    samples when the curve is the run's own: then the two are equal. A curve that ``deadwood eval``
    put in its place (it carries ``by_attack``) shares the samples only when it used the
    configuration's sample count and seed; then they agree to within one sample (the evaluation
    may have run on another device).
    """
    fractions = {"global_sparsity": record.global_sparsity, "one_shot_accuracy": record.one_shot_accuracy,
                 "clean_accuracy": record.clean_accuracy,
                 "teacher.clean_accuracy": record.teacher.get("clean_accuracy"),
                 **{f"layer_sparsity[{n}]": v for n, v in record.layer_sparsity.items()}}
    for name, value in fractions.items():
        if value is not None and not is_fraction(value):
            return f"{name} is {value!r}, not a number in [0, 1]"
    evaluation = record.config.get("evaluation") or {}
    for name, clean, curve in (("robustness", record.clean_accuracy, record.robustness),
                               ("teacher.robustness", record.teacher.get("clean_accuracy"),
                                record.teacher.get("robustness"))):
        if not curve:
            continue  # never evaluated
        eps, acc, own = curve.get("epsilons") or [], curve.get("accuracy") or [], curve.get("clean_accuracy")
        if len(eps) != len(acc) or not all(is_fraction(a) for a in acc) or not is_fraction(own):
            return f"{name} holds accuracies that are not numbers in [0, 1], one per epsilon"
        nondeterministic = any(c.get("name") == "epsilon-zero" and c.get("passed") is False
                               for c in curve.get("checks") or [])
        if 0.0 in eps and not nondeterministic and acc[eps.index(0.0)] != own:
            return (f"{name}: accuracy at epsilon 0 ({acc[eps.index(0.0)]:.4f}) differs from its clean "
                    f"accuracy ({own:.4f})")
        if "by_attack" not in curve:
            tolerance = 0.0
        elif curve.get("samples") == evaluation.get("samples") and curve.get("seed") == record.config.get("seed"):
            tolerance = 1.0 / curve["samples"]
        else:
            continue  # measured on other samples: nothing to compare
        if clean is not None and abs(clean - own) > tolerance + 1e-12:
            where = "clean_accuracy" if name == "robustness" else "teacher.clean_accuracy"
            return f"{where} is {clean:.4f} but {name} measured {own:.4f} on the same {curve.get('samples')} samples"
    return None


def is_fraction(v) -> bool:
    """A finite number in [0, 1] (not a bool): what every accuracy and sparsity is."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0.0 <= v <= 1.0


@dataclass
class LoadedRun:
    path: Path
    record: RunRecord
    model: nn.Module  # eval mode, pruned weights loaded

    @property
    def config(self):
        from ..config import RunConfig

        return RunConfig.from_dict(self.record.config)

    def dense(self) -> nn.Module:
        """The teacher, loaded from ``dense.pt`` (eval mode)."""
        return load_model(self.config, self.path / DENSE_FILE)


def load_model(config, file: Path) -> nn.Module:
    """``config``'s model with the state_dict in ``file`` (eval mode); RunFileError when it does not fit."""
    from ..models.registry import model_for

    model = model_for(config)
    state = load_state(file)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise RunFileError(f"{file} does not match model '{config.model}' for '{config.dataset}': "
                           f"{str(e).splitlines()[0]}") from None
    return model.eval()


def load_run(path) -> LoadedRun:
    """Load a finished run directory: its record and the pruned model (eval mode)."""
    from ..config import RunConfig
    from ..errors import ConfigError

    path = Path(path)
    record = read_record(path)
    try:
        config = RunConfig.from_dict(record.config)
    except (ConfigError, TypeError, AttributeError, ValueError) as e:
        raise RunFileError(f"{path / RECORD_FILE} holds an unusable configuration: {e}") from None
    return LoadedRun(path, record, load_model(config, path / MODEL_FILE))
