"""The Stage 1 solve, cached on its own: one solve serves every κ.

The Lagrangian-dual solve reads the teacher, the ``deadwooding`` section, ε, the seed, the batch
size and the data, never the target sparsity κ (κ enters at the cut, and after it). So a solve
is stored under :meth:`RunConfig.solve_key`, which leaves κ, the cut, the fine-tune and the evaluation out,
and a run at another κ with the same solve settings starts from it. The one option that keeps
Stage 1 alive past the cut, ``finetune.keep_dual``, carries the open multipliers into the
fine-tune; such runs always solve afresh and never read or write this cache.

A stored solve is a folder ``<root>/solves/<key>/`` holding ``student.pt`` (the solved, uncut
student) and ``solve.json`` (its history, report and sparsity profile), published atomically.
A damaged entry is recomputed, never served.
"""
from __future__ import annotations

import json
import shutil
from typing import Optional
from pathlib import Path

from ...errors import RunFileError
from ...events import emit
from ... import fingerprint
from ...storage.files import WAITING, atomic_save_state, atomic_write_json, entry_lock, load_state, publish_dir, staging_dir

STATE_FILE, SUMMARY_FILE = "student.pt", "solve.json"
FORMAT = 1


def solve_key(config) -> str:
    """:meth:`RunConfig.solve_key` with this store's format (a new format never reads an old entry)."""
    return f"{config.solve_key()}-{FORMAT}"


def caches_solve(config) -> bool:
    """Whether a run of ``config`` reads and writes this cache: Deadwooding, unless ``finetune.keep_dual``
    (see the module docstring and :func:`deadwood.methods.deadwooding.method.prune`)."""
    return config.method == "deadwooding" and not config.finetune.keep_dual


class SolveCache:
    """Solved students under ``root/solves/<solve_key>/``."""

    def __init__(self, root, read: bool = True):
        self.root, self.read = Path(root) / "solves", read

    def folder(self, config) -> Path:
        return self.root / solve_key(config)

    def summary(self, config) -> Optional[dict]:
        """The stored solve's summary (history, report, sparsity profile) without its weights, or
        None when there is none or it is damaged: what a page needs to draw the profile at any κ."""
        try:
            summary = json.loads((self.folder(config) / SUMMARY_FILE).read_text())
        except (OSError, ValueError):
            return None
        ok = summary.get("key") == solve_key(config) and isinstance(summary.get("profile"), dict)
        return summary if ok else None

    def has(self, config) -> bool:
        """Whether a stored solve for ``config`` is there (its summary readable, its weights present)."""
        return self.summary(config) is not None and (self.folder(config) / STATE_FILE).is_file()

    def load(self, config) -> Optional[tuple[dict, dict]]:
        """(student state_dict, summary) of a stored solve, or None when there is none or it is damaged."""
        summary = self.summary(config) if self.read else None
        if summary is None or not isinstance(summary.get("history"), list):
            return None
        try:
            return load_state(self.folder(config) / STATE_FILE), summary
        except (OSError, ValueError, RunFileError):  # damaged: recomputed and replaced
            return None

    def lock(self, config, on_event=None, stage: str = "dual"):
        """Hold this solve while computing it (:func:`deadwood.storage.files.entry_lock`): another process
        solving it makes this one wait ('waiting' events of ``stage``) and then load its result."""
        return entry_lock(self.folder(config), lambda: emit(on_event, "waiting", stage,
                                                            metrics={"message": WAITING + "solve"}))

    def save(self, config, state: dict, summary: dict) -> None:
        folder = self.folder(config)
        tmp = staging_dir(folder)
        try:
            atomic_save_state(tmp / STATE_FILE, state)
            atomic_write_json(tmp / SUMMARY_FILE,
                              {**summary, "key": solve_key(config), "code": fingerprint.code_fingerprint()})
            publish_dir(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
