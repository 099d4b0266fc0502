"""The code that computes results, as one hash: a cached result is served only to the same code.

Every cache key (:meth:`deadwood.RunConfig.key`, ``teacher_key``, ``solve_key``) holds
:func:`code_fingerprint`, a hash of the source of the engine modules that decide a result's
numbers: data, models, masks, the cut and its allocations, the dual solve, training, attacks and
robustness, the methods, the pipeline. Editing any of them (the training loop, say) changes every
key, so the next run recomputes instead of serving what the old code made; entries made by other
code stay on disk as *stale* until ``deadwood cache prune`` removes them.

Why a fingerprint rather than a hand-kept results version: a version number moves only when
somebody remembers to move it, and the benchmark work here once served stale numbers for exactly
that reason; a hash of the source cannot be forgotten. The price is that an edit that changes no
number (a comment in train.py) also recomputes; the modules that cannot change a number (the
command line, benchmark tooling, the lenses in ``analysis/``, progress bars, events, errors, the
file store) are left out, so editing them keeps every cached result.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# Folders and modules whose source cannot change a cached number.
NOT_COMPUTING = ("cli", "bench", "analysis", "__main__.py", "__init__.py", "errors.py", "events.py",
                 "fingerprint.py", "progress.py", "stages.py", "store.py", "version.py")


def computing_modules(root: Path = PACKAGE) -> list[Path]:
    """The source files the fingerprint covers, in a fixed order."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in NOT_COMPUTING or (len(rel.parts) == 1 and rel.name in NOT_COMPUTING):
            continue
        out.append(path)
    return out


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
