"""The analyses folder of the cache, by its on-disk layout: what ``deadwood cache`` knows of it.

The app's analysis jobs (the lenses, the robustness explorer) store each result as one file,
``<cache>/analyses/<name>-<digest>.npz``: a numpy archive of arrays beside ``__json__``, a UTF-8 JSON
document that refers to them, read back without pickle. It is written to a hidden temporary file in
the same folder (``.<file name>.<random>``) and renamed into place. The engine never imports the
app, so this module reads those files by that layout alone and never decodes a result.

The digest in a file's name covers the code that computed it (the engine's fingerprint and the
analysis code), hashed together: the engine cannot recompute it, so a result is never called stale.
A result made by other code is simply never asked for again; removing one only costs recomputing it.
"""
from __future__ import annotations

import json
import re
import time
import zipfile
from pathlib import Path

import numpy as np

FOLDER = "analyses"
JSON_ENTRY = "__json__"  # the archive member holding the result's JSON document
NAME = re.compile(r"^[A-Za-z0-9_]+-[0-9a-f]+\.npz$")  # <name>-<digest>.npz
STAGING = re.compile(r"^\..+\.npz\..+$")  # .<file name>.<random>: a write not yet renamed
# A result is written from memory in one go and renamed at once: a staging file this much older than
# now was left by a writer that died (its name holds no process id to ask).
ABANDONED_AFTER_S = 600


def files(root: Path) -> list[Path]:
    """The results and staging files in ``root/analyses``, sorted (other files there are not ours)."""
    folder = Path(root) / FOLDER
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and (NAME.match(p.name) or STAGING.match(p.name)))


def check(path: Path, deep: bool = True) -> tuple[str, str]:
    """(state, why) of one file of the analyses folder, in :mod:`deadwood.storage.cache`'s states:
    a staging file is ``partial`` (``writing`` while it is young); a result is ``ok`` or ``damaged``.
    Shallow, a result's archive must list ``__json__``; ``deep`` also reads every array without pickle
    and the JSON document."""
    if STAGING.match(path.name):
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            age = ABANDONED_AFTER_S
        if age < ABANDONED_AFTER_S:
            return "writing", f"being written (a staging file under {ABANDONED_AFTER_S // 60} minutes old)"
        return "partial", "a temporary file left by an interrupted write"
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
    except (OSError, zipfile.BadZipFile) as e:
        return "damaged", f"not a readable numpy archive ({type(e).__name__})"
    if f"{JSON_ENTRY}.npy" not in members:
        return "damaged", f"the archive lacks {JSON_ENTRY}, the result's JSON document"
    if not deep:
        return "ok", ""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
        json.loads(arrays[JSON_ENTRY].tobytes().decode())
    except (OSError, ValueError, KeyError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as e:
        # ValueError: among others, what allow_pickle=False says of pickled data
        return "damaged", f"does not load without pickle ({type(e).__name__}: {str(e)[:120]})"
    return "ok", ""
