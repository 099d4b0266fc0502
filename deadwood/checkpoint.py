"""The user's trained weights: a state_dict loaded safely into a model, and digests of a file or of tensors.

Loading goes through ``torch.load(..., weights_only=True)``: a file that asks to build anything but
tensors and plain containers is refused before any of its code could run.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError, RunFileError
from .store import load_untrusted

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


# (absolute path, size, mtime_ns) -> digest
_DIGESTS: dict[tuple[str, int, int], str] = {}


def tensors_digest(head: str, tensors) -> str:
    """The first 16 hex digits of SHA-256 over ``head`` and each ``(label, tensor)`` of ``tensors``:
    its label, dtype, shape and bytes (the identity of in-memory weights or data)."""
    h = hashlib.sha256(head.encode())
    for label, t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{label}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def file_digest(path) -> str:
    """The first 16 hex digits of SHA-256 over the file's bytes, memoised in this process by
    (absolute path, size, mtime_ns). Raises :class:`RunFileError` when the file cannot be read."""
    path = Path(path).expanduser().absolute()
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _DIGESTS:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            _DIGESTS[key] = h.hexdigest()[:16]
    except OSError as e:
        raise RunFileError(f"checkpoint {path} could not be read ({e.strerror or e})") from None
    return _DIGESTS[key]


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
