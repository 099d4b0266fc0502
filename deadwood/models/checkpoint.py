"""Checkpoints: every one this project reads (the user's trained weights, the cache's models) goes
through one weights-only loader, and the user's state_dict is loaded into a model with a clear
message when it does not fit.

Loading goes through ``torch.load(..., weights_only=True)``: a file that asks to build anything but
tensors and plain containers is refused before any of its code could run.
"""
from __future__ import annotations

import functools
import io
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from ..data.registry import DatasetInfo
from ..errors import ConfigError, DeadwoodError, RunFileError

WRAPPER_KEYS = ("state_dict", "model")  # where training scripts commonly nest the weights
_SHOWN = 4  # keys named per kind of mismatch


def load_checkpoint(model: nn.Module, path) -> None:
    """Load the state_dict in the file at ``path`` into ``model``, in place, strictly.

    The file holds a state_dict (names to tensors), or a dict holding one under ``"state_dict"`` or
    ``"model"`` (beside an epoch, an optimiser state...). Every key must match: nothing is loaded unless
    all of them do. Raises :class:`RunFileError` when the file is missing, is not a torch file, or was
    refused by the weights-only unpickler; :class:`ConfigError` when it is a checkpoint for another
    architecture, naming the missing and unexpected keys and the size mismatches.
    """
    path = Path(path).expanduser()
    state = _unwrap(_load(path), path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    sizes = [f"{k}: checkpoint {_shape(state[k])}, model {_shape(own[k])}"
             for k in own if k in state and state[k].shape != own[k].shape]
    problems = [f"{len(keys)} {what} ({_few(keys)})"
                for what, keys in (("missing key(s)", missing), ("unexpected key(s)", unexpected),
                                   ("size mismatch(es)", sizes)) if keys]
    if problems:
        raise ConfigError(f"checkpoint {path} does not fit {type(model).__name__} (another architecture, "
                          f"input size or class count?): {'; '.join(problems)}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # the checks above should leave nothing for torch to refuse
        raise ConfigError(f"checkpoint {path} does not load into {type(model).__name__}: "
                          f"{str(e).strip().splitlines()[0]}") from None

def check_checkpoint(model: str, info: DatasetInfo, path) -> None:
    """Raise what :func:`load_checkpoint` would when the file at ``path`` is loaded into a fresh
    ``model`` for ``info``'s data (the global RNG left alone), or RunFileError when the file cannot be
    read. The answer is kept per process by the file's content (:func:`deadwood.data.digest.file_digest`),
    so asking again for the same file costs a ``stat``."""
    from ..data.digest import file_digest

    path = str(Path(path).expanduser())
    problem = _checkpoint_problem(model, info, path, file_digest(path))
    if problem is not None:
        kind, message = problem
        raise kind(message)


@functools.lru_cache(maxsize=16)
def _checkpoint_problem(model: str, info: DatasetInfo, path: str, digest: str):
    """``(error class, message)`` of loading ``path`` into ``model``, or None when it loads."""
    from .registry import build_model

    try:
        with torch.random.fork_rng(devices=[]):
            load_checkpoint(build_model(model, info), path)
    except DeadwoodError as e:
        return type(e), str(e)
    return None


def _load(path: Path):
    """What ``torch.load(weights_only=True)`` makes of the file, or RunFileError saying why not."""
    return load_untrusted(path, f"checkpoint {path} was refused by the safe (weights-only) loader")


def _unwrap(obj, path: Path) -> dict[str, torch.Tensor]:
    """The state_dict in ``obj``: ``obj`` itself, or ``obj["state_dict"]`` / ``obj["model"]``."""
    if _is_state(obj):
        return obj
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if _is_state(obj.get(key)):
                return obj[key]
        keys = ", ".join(repr(k) for k in list(obj)[:_SHOWN]) + (", ..." if len(obj) > _SHOWN else "")
        found = f"a dict with keys {keys}" if obj else "an empty dict"
    else:
        found = type(obj).__name__
    raise RunFileError(f"checkpoint {path} holds {found}, not a state_dict (names to tensors), "
                       f"nor one under {' or '.join(repr(k) for k in WRAPPER_KEYS)}")


def _is_state(obj) -> bool:
    return (isinstance(obj, dict) and bool(obj)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _few(items: list[str]) -> str:
    return ", ".join(items[:_SHOWN]) + (f", and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(n) for n in t.shape) or "scalar"


def load_untrusted(path: Path, refused: str):
    """What ``torch.load(path, weights_only=True)`` makes of a file (no code runs), or a
    :class:`RunFileError`: missing, a folder, unreadable, or, worded as ``refused (why)``, empty or
    refused by the loader. The file is read into memory first: a truncated zip then fails in the
    parser, never in a seek (EINVAL)."""
    path = Path(path)
    if path.is_dir():
        raise RunFileError(f"checkpoint {path} is a folder, not a file")
    if not path.is_file():
        raise RunFileError(f"checkpoint not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RunFileError(f"checkpoint {path} could not be read ({e.strerror or e})") from None
    if not data:
        raise RunFileError(f"{refused} (it is empty)")
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol is noise here
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # any failure to parse an untrusted file means it is not ours
        raise RunFileError(f"{refused} ({_why_refused(e)})") from None


def _why_refused(e: Exception) -> str:
    """Why torch refused a checkpoint, in our words: torch's own text for the weights-only refusal
    advises loading with ``weights_only=False``, which runs whatever the file holds."""
    text = str(e).strip()
    if "Weights only load failed" in text or "WeightsUnpickler" in text:
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            return (f"it asks to import {found.group(1)}, which a file of tensors never does; it was refused "
                    "unread, as it may be malicious")
        return "it is damaged, or holds objects other than tensors"
    first = text.splitlines()[0].split(". ")[0] if text else type(e).__name__
    return f"it is damaged or truncated: {first}"
