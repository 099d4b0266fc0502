"""Digests of content: files by their bytes, in-memory tensors by dtype, shape and bytes.

Cache keys name data, checkpoints and the user's registered networks by these digests, never
by a path or a name alone (deadwood.config.RunConfig.data_identity)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..errors import RunFileError

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
