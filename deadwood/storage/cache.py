"""The configuration-hash cache: ``run(config)`` asked twice is a look-up; and its health.

:class:`Cache` is the one way in for everything outside storage (the pipeline, the benchmark, the
app): paths, look-ups, loads, the teacher's publication, discarding a run, the sparsity profile of
a stored solve. Teachers live under ``teacher_key()`` (every method at every sparsity prunes the
same one), stored solves under ``solve_key()`` (:mod:`deadwood.storage.solves`, as ``Cache.solves``),
finished runs under ``key()``; every key holds the engine code's fingerprint
(:mod:`deadwood.fingerprint`). Nothing here computes; :mod:`deadwood.pipeline` fills the cache.

For ``deadwood cache list | verify | prune`` (:func:`entries`, :func:`prune`) an entry (a teacher,
solve or run folder, or a file of the app's analysis results, :mod:`deadwood.storage.analyses`) is

- ``ok``: whole, readable, and made by this code;
- ``stale``: whole, but made by other engine code (its recorded fingerprint differs from
  :func:`deadwood.fingerprint.code_fingerprint`, or it predates fingerprints): never served,
  since every key holds the fingerprint, and safe to remove. An analysis result records no
  fingerprint one can read, so it is never called stale;
- ``damaged``: a file is missing, unreadable JSON, a checkpoint or analysis result that does not
  load, or a solve's snapshots that do not load or do not match what its summary notes: never
  served (recomputed on the next request) and safe to remove. A solve whose snapshots alone are
  damaged still serves runs (the replay solves afresh), and ``prune`` removes only its snapshots;
- ``partial``: a staging folder or file a crash left behind (a name starting with a dot), never
  read; one whose writer is still running is ``writing`` and left alone.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

from torch import nn

if TYPE_CHECKING:  # a type only: storage sits above config, which imports nothing of it
    from ..config import RunConfig

from .. import fingerprint
from .. import robustness
from ..errors import RunFileError
from .record import (DENSE_FILE, MODEL_FILE, RECORD_FILE, RUN_FILES, LoadedRun, RunRecord, is_fraction, load_model,
                     load_run, read_record)
from .files import atomic_save_state, atomic_write_json, check_writable, default_cache_dir, load_state, process_alive, staged
from . import analyses, solves

TEACHERS, RUNS = "teachers", "runs"
TEACHER_FILE = "teacher.json"


class Cache:
    """``root/teachers/<teacher_key>/``, ``root/solves/<solve_key>/`` and ``root/runs/<key>/``.

    An entry is served only when it is sound: a damaged one (a truncated checkpoint, an invalid or
    self-contradicting record or summary) is a miss, which the pipeline computes again and replaces.
    """

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.solves = solves.SolveStore(self.root)  # Stage 1 solves kept apart from κ

    # ------------------------------------------------------------------ paths
    def run_dir(self, config: RunConfig) -> Path:
        return self.root / RUNS / config.key()

    def teacher_dir(self, config: RunConfig) -> Path:
        return self.root / TEACHERS / config.teacher_key()

    def solve_dir(self, config: RunConfig) -> Path:
        return self.solves.folder(config)

    def check_writable(self) -> None:
        """RunFileError naming the folder and how to choose another, unless entries can be written here."""
        try:
            check_writable(self.root)
        except RunFileError as e:
            raise RunFileError(f"{e}: the cache folder {self.root} must be writable; choose another with "
                               "DEADWOOD_CACHE (or --cache-dir)") from None

    # ------------------------------------------------------------------ runs
    def has_run(self, config: RunConfig) -> bool:
        """Whether a sound run of ``config`` is cached: its record reads and agrees with itself
        (:func:`deadwood.storage.record.read_record`) and both checkpoints are there. Loads no model."""
        folder = self.run_dir(config)
        try:
            read_record(folder)
        except RunFileError:
            return False
        return all((folder / f).is_file() for f in RUN_FILES)

    def load(self, config: RunConfig) -> tuple[LoadedRun | None, str | None]:
        """The cached run of ``config``, loaded, and why it cannot be served: ``(run, None)``;
        ``(None, why)`` when its entry is damaged (one line, naming the file); ``(None, None)`` when
        there is none. Never raises for a damaged entry; :func:`deadwood.pipeline.run` recomputes
        and replaces it."""
        folder = self.run_dir(config)
        if not (folder / RECORD_FILE).exists():
            return None, None
        try:
            loaded = load_run(folder)
            if not (folder / DENSE_FILE).is_file():
                raise RunFileError(f"{folder / DENSE_FILE} is missing")
        except RunFileError as e:
            return None, str(e)
        return loaded, None

    def record(self, config: RunConfig) -> tuple[RunRecord | None, str | None]:
        """Like :meth:`load`, for the record alone (no model is loaded: cheap enough for every
        redraw of a page): ``(record, None)``, ``(None, why it is damaged)`` or ``(None, None)``."""
        folder = self.run_dir(config)
        if not (folder / RECORD_FILE).exists():
            return None, None
        try:
            return read_record(folder), None
        except RunFileError as e:
            return None, str(e)

    def model_file(self, config: RunConfig) -> Path:
        """The pruned checkpoint of ``config``'s cached run (``model.pt``, a plain state_dict)."""
        return self.run_dir(config) / MODEL_FILE

    def discard(self, config: RunConfig) -> None:
        """Remove the cached run of ``config`` (its run folder only: the teacher and the solve it
        started from stay), so that the next request computes it afresh."""
        shutil.rmtree(self.run_dir(config), ignore_errors=True)

    # ------------------------------------------------------------------ teachers
    def has_teacher(self, config: RunConfig) -> bool:
        """Whether :func:`deadwood.pipeline.get_teacher` would serve ``config``'s teacher from here
        (sound and measured the way ``config`` measures; no training)."""
        try:
            return self.teacher(config) is not None
        except RunFileError:
            return False

    def teacher(self, config: RunConfig) -> tuple[nn.Module, dict] | None:
        """The teacher cached for ``config`` (CPU, eval mode) and its summary; None when absent or
        measured another way (:func:`summary_fits`). A damaged entry raises :class:`RunFileError`
        naming the file."""
        folder = self.teacher_dir(config)
        summary_file, state_file = folder / TEACHER_FILE, folder / DENSE_FILE
        if not (summary_file.is_file() and state_file.is_file()):
            return None
        try:
            summary = json.loads(summary_file.read_text())
        except (ValueError, OSError) as e:
            raise RunFileError(f"{summary_file} is not a valid teacher summary ({e})") from None
        if not isinstance(summary, dict) or not isinstance(summary.get("robustness"), dict):
            raise RunFileError(f"{summary_file} is not a valid teacher summary")
        if not summary_fits(summary, config):
            return None
        if not (isinstance(summary.get("history"), list) and is_fraction(summary.get("clean_accuracy"))
                and summary["clean_accuracy"] == summary["robustness"].get("clean_accuracy")
                and isinstance(summary.get("seconds"), (int, float)) and isinstance(summary.get("key"), str)):
            raise RunFileError(f"{summary_file} lacks the teacher's history, time or key, or contradicts "
                               "its robustness curve")
        return load_model(config, state_file), summary

    def save_teacher(self, config: RunConfig, model: nn.Module, summary: dict) -> None:
        """Publish ``model`` (its weights) and ``summary`` as ``config``'s teacher, whole or not at all."""
        with staged(self.teacher_dir(config)) as tmp:
            atomic_save_state(tmp / DENSE_FILE, model.state_dict())
            atomic_write_json(tmp / TEACHER_FILE, summary)

    # ------------------------------------------------------------------ solves
    def profile(self, config: RunConfig) -> Optional[dict]:
        """The sparsity profile (one-shot accuracy at every κ) of the stored solve a run of ``config``
        would start from, or None: no solve stored yet, its profile not computed yet (the profile stage
        of the run that solved it comes after that run is published), or a run that stores none
        (:meth:`RunConfig.stores_solve`). Reads one small JSON file."""
        if not config.stores_solve():
            return None
        return self.solves.profile(config) if self.solves.stamp(config) is not None else None


def summary_fits(summary: dict, config: RunConfig) -> bool:
    """A cached teacher summary is reused only when its robustness was measured the way this
    configuration would measure it (same epsilons, samples, steps, result format)."""
    rob = summary.get("robustness", {})
    return (summary.get("epsilons") == config.eval_epsilons and summary.get("samples") == config.evaluation.samples
            and rob.get("steps") == config.evaluation.steps and rob.get("format") == robustness.FORMAT)


# kind -> (folder, summary file, checkpoint files); analysis results are files, not folders (ANALYSIS)
KINDS = {"teacher": (TEACHERS, TEACHER_FILE, (DENSE_FILE,)),
         "solve": (solves.FOLDER, solves.SUMMARY_FILE, (solves.STATE_FILE,)),
         "run": (RUNS, RECORD_FILE, (MODEL_FILE, DENSE_FILE))}
ANALYSIS = "analysis"
STATES = ("ok", "stale", "damaged", "partial", "writing")


@dataclass(frozen=True)
class Entry:
    kind: str
    path: Path  # a folder; a file for an analysis result
    state: str
    why: str
    bytes: int


def _size(path: Path) -> int:
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0
    except OSError:  # removed while being measured (a staging file renamed, an entry replaced)
        return 0


def check(kind: str, path: Path, deep: bool = True, snapshots: bool = True) -> tuple[str, str]:
    """(state, why) of one entry (a folder, or an analysis result's file); ``deep`` also loads its
    checkpoints, a solve's snapshots and an analysis result; ``snapshots=False`` leaves a solve's
    snapshots out (whether the solve itself is sound)."""
    if kind == ANALYSIS:
        return analyses.check(path, deep)
    _, summary_file, checkpoints = KINDS[kind]
    if path.name.startswith("."):
        writer = re.search(r"\.(?:old|tmp)-(\d+)-", path.name)
        if writer and process_alive(int(writer.group(1))):
            return "writing", "being written by a running process"
        return "partial", "a staging folder left by an interrupted write"
    try:
        summary = json.loads((path / summary_file).read_text())
    except FileNotFoundError:
        return "damaged", f"{summary_file} is missing"
    except (OSError, ValueError) as e:
        return "damaged", f"{summary_file} is not valid JSON ({type(e).__name__})"
    if not isinstance(summary, dict):
        return "damaged", f"{summary_file} does not hold a JSON object"
    loaded = {}
    for name in checkpoints:
        if not (path / name).is_file():
            return "damaged", f"{name} is missing"
        if deep:
            try:
                loaded[name] = load_state(path / name)
            except RunFileError as e:
                return "damaged", str(e)
    if kind == "solve" and snapshots:
        why = solves.check_snapshots(path, summary, loaded.get(solves.STATE_FILE))
        if why:
            return "damaged", f"{why}; runs still start from this solve, the replay cannot"
    code = summary.get("code")
    if code != fingerprint.code_fingerprint():
        return "stale", ("made before code fingerprints were recorded" if not code
                         else f"made by other engine code ({code}, this code is {fingerprint.code_fingerprint()})")
    return "ok", ""


def entries(root=None, deep: bool = True) -> list[Entry]:
    """Every entry under the cache folder ``root`` (default ``$DEADWOOD_CACHE``), kind by kind, the
    analysis results last."""
    root = Path(root) if root is not None else default_cache_dir()
    out = []
    for kind, (folder, _, _) in KINDS.items():
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.iterdir() if p.is_dir()):
            state, why = check(kind, path, deep)
            out.append(Entry(kind, path, state, why, _size(path)))
    for path in analyses.files(root):
        state, why = check(ANALYSIS, path, deep)
        out.append(Entry(ANALYSIS, path, state, why, _size(path)))
    return out


def prune(root=None, states: Iterable[str] = ("stale", "damaged", "partial"), dry_run: bool = False) -> list[Entry]:
    """Remove every entry in one of ``states`` (never an ``ok`` one); return what was (or would be)
    removed. A solve whose snapshots alone are damaged keeps serving runs, so only its snapshots go
    (:func:`deadwood.storage.solves.drop_snapshots`; the entry returned names the snapshot file)."""
    states = set(states)
    if "ok" in states:
        raise ValueError("prune never removes entries that may be served")
    gone = []
    for e in entries(root):
        if e.state not in states:
            continue
        if e.kind == "solve" and e.state == "damaged" and check("solve", e.path, snapshots=False)[0] == "ok":
            snaps = e.path / solves.SNAPSHOT_FILE
            gone.append(Entry(e.kind, snaps, e.state, e.why, _size(snaps)))
            if not dry_run:
                solves.drop_snapshots(e.path, e.why)
            continue
        gone.append(e)
        if not dry_run:
            if e.kind == ANALYSIS:
                e.path.unlink(missing_ok=True)
            else:
                shutil.rmtree(e.path, ignore_errors=True)
    return gone
