"""Files on disk: atomic writes, safe checkpoint loading, and the configuration-hash cache.

Everything is written to a temporary name in the same folder and renamed into
place, so a crash leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path

import torch

from .errors import RunFileError


def default_cache_dir() -> Path:
    """``$DEADWOOD_CACHE``, else ``~/.cache/deadwood``."""
    return Path(os.environ.get("DEADWOOD_CACHE") or Path.home() / ".cache" / "deadwood")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode())


def atomic_save_state(path: Path, state_dict: dict) -> None:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from ``path``, unpickled with ``weights_only=True`` (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, AttributeError,
            KeyError, IndexError, TypeError, UnicodeDecodeError) as e:  # a damaged pickle fails in many ways
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunFileError(f"{path} is not a plain-tensor checkpoint this program can load safely ({first})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise RunFileError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return state


def publish_dir(tmp: Path, final: Path) -> None:
    """Move a fully written folder ``tmp`` to ``final``, replacing any old one."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def staging_dir(final: Path) -> Path:
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
