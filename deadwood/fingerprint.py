"""The code that computes results, as one hash: a cached result is served only to the same code.

Every cache key (:meth:`deadwood.RunConfig.key`, ``teacher_key``, ``solve_key``) holds
:func:`code_fingerprint`, a hash of the source of the engine code that decides a result's
numbers, listed in :data:`COVERS`: the packages ``data``, ``models``, ``pruning``,
``robustness``, ``methods`` and ``config``, and the modules ``train``, ``pipeline``,
``prune_api`` and ``device``. Editing any file there changes every key, so the next run
recomputes instead of serving what the old code made; entries made by other code stay on disk
as *stale* until ``deadwood cache prune`` removes them. Editing anything else (the command
line, the benchmark tooling, the lenses in ``analysis``, ``storage``, ``deploy``, events,
progress, the app) keeps every cached result. It lives at the package's root, below
``config`` (whose keys hold it) and ``storage`` (which records it).

Why a fingerprint rather than a hand-kept results version: a version number moves only when
somebody remembers to move it, and the benchmark work here once served stale numbers for exactly
that reason; a hash of the source cannot be forgotten. The price is that an edit that changes no
number (a comment in train.py) also recomputes.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# What makes results: packages (every .py below them) and root modules.
COVERS = ("data", "models", "pruning", "robustness", "methods", "config",
          "train.py", "pipeline.py", "prune_api.py", "device.py")


def computing_modules(root: Path = PACKAGE) -> list[Path]:
    """The source files the fingerprint covers, in a fixed order."""
    out = []
    for entry in COVERS:
        path = root / entry
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return sorted(out)


def fingerprint_of(root: Path) -> str:
    """A hash of the computing modules' source under ``root`` (path and bytes of each)."""
    h = hashlib.sha256()
    for path in computing_modules(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@functools.cache
def code_fingerprint() -> str:
    """This installation's fingerprint, computed once per process."""
    return fingerprint_of(PACKAGE)
