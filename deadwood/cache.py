"""What the cache holds, and whether each entry may still be served: list, verify, prune.

The cache (``$DEADWOOD_CACHE``, see :class:`deadwood.pipeline.Cache`) has three kinds of entry,
each a folder named by its key: ``teachers/<teacher_key>``, ``solves/<solve_key>`` and
``runs/<key>``. An entry is

- ``ok``: whole, readable, and made by this code;
- ``stale``: whole, but made by other engine code (its recorded fingerprint differs from
  :func:`deadwood.fingerprint.code_fingerprint`, or it predates fingerprints): never served,
  since every key holds the fingerprint, and safe to remove;
- ``damaged``: a file is missing, unreadable JSON, or a checkpoint that does not load: never
  served (recomputed on the next request) and safe to remove;
- ``partial``: a staging folder a crash left behind (``.<name>.tmp-*``), never read.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import RunFileError
from . import fingerprint
from .store import default_cache_dir, load_state

# kind -> (folder, summary file, checkpoint files)
KINDS = {"teacher": ("teachers", "teacher.json", ("dense.pt",)),
         "solve": ("solves", "solve.json", ("student.pt",)),
         "run": ("runs", "record.json", ("model.pt", "dense.pt"))}
STATES = ("ok", "stale", "damaged", "partial")


@dataclass(frozen=True)
class Entry:
    kind: str
    path: Path
    state: str
    why: str
    bytes: int


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def check(kind: str, path: Path, deep: bool = True) -> tuple[str, str]:
    """(state, why) of one entry folder; ``deep`` also loads its checkpoints."""
    _, summary_file, checkpoints = KINDS[kind]
    if path.name.startswith("."):
        return "partial", "a staging folder left by an interrupted write"
    try:
        summary = json.loads((path / summary_file).read_text())
    except FileNotFoundError:
        return "damaged", f"{summary_file} is missing"
    except (OSError, ValueError) as e:
        return "damaged", f"{summary_file} is not valid JSON ({type(e).__name__})"
    if not isinstance(summary, dict):
        return "damaged", f"{summary_file} does not hold a JSON object"
    for name in checkpoints:
        if not (path / name).is_file():
            return "damaged", f"{name} is missing"
        if deep:
            try:
                load_state(path / name)
            except RunFileError as e:
                return "damaged", str(e)
    code = summary.get("code")
    if code != fingerprint.code_fingerprint():
        return "stale", ("made before code fingerprints were recorded" if not code
                         else f"made by other engine code ({code}, this code is {fingerprint.code_fingerprint()})")
    return "ok", ""


def entries(root=None, deep: bool = True) -> list[Entry]:
    """Every entry under the cache folder ``root`` (default ``$DEADWOOD_CACHE``), kind by kind."""
    root = Path(root) if root is not None else default_cache_dir()
    out = []
    for kind, (folder, _, _) in KINDS.items():
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.iterdir() if p.is_dir()):
            state, why = check(kind, path, deep)
            out.append(Entry(kind, path, state, why, _size(path)))
    return out


def prune(root=None, states: Iterable[str] = ("stale", "damaged", "partial"), dry_run: bool = False) -> list[Entry]:
    """Remove every entry in one of ``states`` (never an ``ok`` one); return what was (or would be) removed."""
    states = set(states)
    if "ok" in states:
        raise ValueError("prune never removes entries that may be served")
    gone = [e for e in entries(root) if e.state in states]
    if not dry_run:
        for e in gone:
            shutil.rmtree(e.path, ignore_errors=True)
    return gone
