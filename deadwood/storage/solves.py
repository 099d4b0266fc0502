"""Stored solves: a method's Stage 1 result kept on its own, so that one solve serves every κ.

Deadwooding's Lagrangian-dual solve reads the teacher, the ``deadwooding`` section, ε, the seed, the
batch size and the data, never the target sparsity κ (κ enters at the cut, and after it). So a solve
is stored under :meth:`RunConfig.solve_key`, which leaves κ, the cut, the fine-tune and the
evaluation out, and a run at another κ with the same solve settings starts from it. Which runs read
and write this store is :meth:`RunConfig.stores_solve` (a registry fact of the method, and never
with ``finetune.keep_dual``, which carries the open multipliers on into the fine-tune).

A stored solve is a folder ``<root>/solves/<key>/`` holding ``student.pt`` (the solved, uncut
student), ``solve.json`` (its history and report) and, for a model small enough,
``snapshots.safetensors`` (the prunable weights at the end of every epoch, float16, for replaying the
solve), published whole (:func:`deadwood.storage.files.staged`). A damaged entry is recomputed,
never served; damaged snapshots alone leave the solve serving runs, and the replay solves afresh
(:func:`check_snapshots` says what is wrong with them, for ``deadwood cache verify``). The snapshots do not change the key: an entry stored without them still serves every
run, and only the replay asks for a fresh solve (``summary["snapshots"]`` is absent there). Its sparsity
profile comes later, from the run's own profile stage once that run is published: ``profile.json``,
written atomically into the folder (:meth:`SolveStore.save_profile`), so a reader finds the whole
profile or none; publishing the solve again removes it with the old folder.

The store lives here, beside teachers and runs, rather than with the method: it is files under a
key, and :class:`deadwood.storage.cache.Cache` (which the app asks) may not import the methods.
What the solve holds and when it is computed stays with the method
(:mod:`deadwood.methods.deadwooding.method`), which receives the store in its ``PruneContext``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import torch

from .. import fingerprint
from ..errors import RunFileError
from .files import (atomic_save_state, atomic_save_tensors, atomic_write_json, entry_lock, load_state, load_tensors,
                    staged)

FOLDER, STATE_FILE, SUMMARY_FILE = "solves", "student.pt", "solve.json"
SNAPSHOT_FILE, PROFILE_FILE = "snapshots.safetensors", "profile.json"
FORMAT = 1


def solve_key(config) -> str:
    """:meth:`RunConfig.solve_key` with this store's format (a new format never reads an old entry)."""
    return f"{config.solve_key()}-{FORMAT}"


class SolveStore:
    """Stored solves under ``root/solves/<solve_key>/``; with ``read`` False it only writes
    (a run asked not to use the cache solves afresh, and still replaces the entry)."""

    def __init__(self, root, read: bool = True):
        self.root, self.read = Path(root) / FOLDER, read

    def write_only(self) -> "SolveStore":
        """This store, never read from: what a run that must not use the cache gets."""
        return SolveStore(self.root.parent, read=False)

    def folder(self, config) -> Path:
        return self.root / solve_key(config)

    def summary(self, config) -> Optional[dict]:
        """The stored solve's summary (history, report, and its sparsity profile or None while none
        is stored) without its weights, or None when there is none or it is damaged: what a page
        needs to draw the solve and the profile at any κ."""
        try:
            summary = json.loads((self.folder(config) / SUMMARY_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not (isinstance(summary, dict) and summary.get("key") == solve_key(config)):
            return None
        return {**summary, "profile": self.profile(config)}

    def profile(self, config) -> Optional[dict]:
        """The stored solve's sparsity profile, or None: none computed yet, or not readable (then the
        next run of this solve computes it again). A store that only writes never reads one."""
        if not self.read:
            return None
        try:
            stored = json.loads((self.folder(config) / PROFILE_FILE).read_text())
        except (OSError, ValueError):
            return None
        ok = (isinstance(stored, dict) and stored.get("key") == solve_key(config)
              and isinstance(stored.get("profile"), dict))
        return stored["profile"] if ok else None

    def save_profile(self, config, profile: dict) -> None:
        """Store ``profile`` beside the solve of ``config`` (one atomic file: whole or absent)."""
        atomic_write_json(self.folder(config) / PROFILE_FILE, {"profile": profile, "key": solve_key(config),
                                                               "code": fingerprint.code_fingerprint()})

    def stamp(self, config) -> Optional[int]:
        """When the stored solve's summary or profile was last written (ns), or None when there is no
        solve: a key for callers that keep its summary in memory."""
        try:
            stamp = (self.folder(config) / SUMMARY_FILE).stat().st_mtime_ns
        except OSError:
            return None
        try:
            return max(stamp, (self.folder(config) / PROFILE_FILE).stat().st_mtime_ns)
        except OSError:
            return stamp

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

    def lock(self, config, on_wait=None):
        """Hold this solve while computing it (:func:`deadwood.storage.files.entry_lock`): another process
        solving it makes this one wait (calling ``on_wait()`` at every try) and then load its result."""
        return entry_lock(self.folder(config), on_wait)

    def snapshots(self, config) -> Optional[list[dict]]:
        """Per epoch of the stored solve, ``{layer: weights (float16)}`` in the model's layer order, or
        None when the entry kept none (stored before snapshots, or a model above the size limit) or
        they cannot be read. What ``summary["snapshots"]`` says of them tells which."""
        layers, epochs = snapshot_note(self.summary(config) or {}) or ([], 0)
        if not epochs:
            return None
        try:
            flat = load_tensors(self.folder(config) / SNAPSHOT_FILE)
            return [{n: flat[f"{e}/{n}"] for n in layers} for e in range(epochs)]
        except (RunFileError, KeyError, TypeError):
            return None

    def discard(self, config) -> None:
        """Remove the stored solve of ``config``, so that the next run that needs it solves afresh."""
        shutil.rmtree(self.folder(config), ignore_errors=True)

    def save(self, config, state: dict, summary: dict, snapshots: Optional[list[dict]] = None) -> None:
        """Publish ``state`` (the solved student), ``summary`` and the per-epoch ``snapshots`` (a list
        of ``{layer: tensor}``, keyed ``"<epoch index>/<layer>"`` in the file) as the stored solve of
        ``config``, all in one rename."""
        with staged(self.folder(config)) as tmp:
            atomic_save_state(tmp / STATE_FILE, state)
            if snapshots:
                atomic_save_tensors(tmp / SNAPSHOT_FILE, {f"{e}/{n}": w for e, snap in enumerate(snapshots)
                                                          for n, w in snap.items()})
            atomic_write_json(tmp / SUMMARY_FILE,
                              {**summary, "key": solve_key(config), "code": fingerprint.code_fingerprint()})


def drop_snapshots(folder: Path, why: str) -> None:
    """Keep the stored solve in ``folder`` and forget its snapshots: its summary loses the note and says
    ``why`` as ``snapshots_dropped`` (in one atomic write), then the file goes. Runs still start from the
    solve; the replay says its snapshots were damaged and offers a fresh solve. For ``deadwood cache
    prune`` on a solve whose snapshots alone are damaged: a solve costs minutes, its snapshots only serve
    the replay."""
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    summary.pop("snapshots", None)
    summary["snapshots_dropped"] = why
    atomic_write_json(folder / SUMMARY_FILE, summary)
    (folder / SNAPSHOT_FILE).unlink(missing_ok=True)


def snapshot_note(summary: dict) -> Optional[tuple[list[str], int]]:
    """``(layers, epochs)`` of the snapshots a stored solve's summary notes, or None when it notes none
    (stored before snapshots) or its note is not valid. 0 epochs: a model above the size limit."""
    note = summary.get("snapshots")
    layers, epochs = (note.get("layers"), note.get("epochs")) if isinstance(note, dict) else (None, None)
    if (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0 and isinstance(layers, list)
            and all(isinstance(n, str) for n in layers)):
        return layers, epochs
    return None


def check_snapshots(folder: Path, summary: dict, state: Optional[dict] = None) -> str:
    """Why the snapshots of the stored solve in ``folder`` cannot be replayed, or "" when they can or
    none were kept (``summary["snapshots"]`` absent: stored before snapshots; 0 epochs: a model above
    the limit). ``summary`` is its ``solve.json``. Without ``state`` only the file's presence is
    checked; with the solved student's state_dict the file is read (safetensors: no code runs) and
    every epoch's tensors matched against the note (epochs, layers, weights, dtype) and the student's
    shapes."""
    note = summary.get("snapshots")
    if note is None:
        return ""
    parsed = snapshot_note(summary)
    if parsed is None:
        return f"{SUMMARY_FILE} does not say which snapshots it kept (its 'snapshots' note is not valid)"
    layers, epochs = parsed
    if epochs == 0:
        return ""
    path = folder / SNAPSHOT_FILE
    if not path.is_file():
        return f"{SNAPSHOT_FILE} is missing ({SUMMARY_FILE} notes {epochs} epochs of snapshots)"
    if state is None:
        return ""
    try:
        flat = load_tensors(path)
    except RunFileError as e:
        return f"{SNAPSHOT_FILE} is damaged: {e}"
    expected = [f"{e}/{n}" for e in range(epochs) for n in layers]
    missing, extra = sorted(set(expected) - set(flat)), sorted(set(flat) - set(expected))
    if missing:
        return (f"{SNAPSHOT_FILE} lacks {len(missing)} of the {len(expected)} tensors {SUMMARY_FILE} notes "
                f"(first: {missing[0]})")
    if extra:
        return f"{SNAPSHOT_FILE} holds {len(extra)} tensors {SUMMARY_FILE} does not note (first: {extra[0]})"
    unknown = [n for n in layers if n not in state]
    if unknown:
        return f"{SNAPSHOT_FILE} holds layer {unknown[0]}, which the solved student ({STATE_FILE}) lacks"
    if note.get("weights") != sum(state[n].numel() for n in layers):
        return (f"{SUMMARY_FILE} notes {note.get('weights')} snapshot weights an epoch, the solved student's "
                f"layers hold {sum(state[n].numel() for n in layers)}")
    dtype = getattr(torch, str(note.get("dtype", "float16")), None)
    for key in expected:
        tensor, layer = flat[key], state[key.split("/", 1)[1]]
        if tensor.shape != layer.shape:
            return (f"{SNAPSHOT_FILE}: {key} has shape {tuple(tensor.shape)}, the solved student's layer "
                    f"{tuple(layer.shape)}")
        if tensor.dtype != dtype:
            return f"{SNAPSHOT_FILE}: {key} is {tensor.dtype}, {SUMMARY_FILE} notes {note.get('dtype')}"
    return ""
