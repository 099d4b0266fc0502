"""The configuration-hash cache: ``run(config)`` asked twice is a look-up.

Teachers live under ``teacher_key()`` (every method at every sparsity prunes the same one),
finished runs under ``key()``. Nothing here computes; :mod:`deadwood.pipeline` fills the cache.
"""
from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from . import robustness
from .config import RunConfig
from .errors import RunFileError
from .record import DENSE_FILE, RECORD_FILE, RUN_FILES, LoadedRun, is_fraction, load_model, load_run, read_record
from .store import default_cache_dir

TEACHER_FILE = "teacher.json"


class Cache:
    """``root/teachers/<teacher_key>/`` and ``root/runs/<key>/``.

    An entry is served only when it is sound: a damaged one (a truncated checkpoint, an invalid or
    self-contradicting record or summary) is a miss, which the pipeline computes again and replaces.
    """

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def run_dir(self, config: RunConfig) -> Path:
        return self.root / "runs" / config.key()

    def teacher_dir(self, config: RunConfig) -> Path:
        return self.root / "teachers" / config.teacher_key()

    def has_run(self, config: RunConfig) -> bool:
        """Whether a sound run of ``config`` is cached: its record reads and agrees with itself
        (:func:`deadwood.record.read_record`) and both checkpoints are there. Loads no model."""
        folder = self.run_dir(config)
        try:
            read_record(folder)
        except RunFileError:
            return False
        return all((folder / f).is_file() for f in RUN_FILES)

    def lookup(self, config: RunConfig) -> LoadedRun | None:
        """The cached run of ``config``, loaded; None when there is none or it is damaged
        (:meth:`damage` says how). Never raises for a damaged entry."""
        return self.load(config)[0]

    def damage(self, config: RunConfig) -> str | None:
        """Why the cached run of ``config`` cannot be served, in one line; None when there is none
        or it is sound. A damaged entry is recomputed (and replaced) by :func:`run`."""
        return self.load(config)[1]

    def load(self, config: RunConfig) -> tuple[LoadedRun | None, str | None]:
        """:meth:`lookup` and :meth:`damage` at once (one load)."""
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


def summary_fits(summary: dict, config: RunConfig) -> bool:
    """A cached teacher summary is reused only when its robustness was measured the way this
    configuration would measure it (same epsilons, samples, steps, result format)."""
    rob = summary.get("robustness", {})
    return (summary.get("epsilons") == config.eval_epsilons and summary.get("samples") == config.evaluation.samples
            and rob.get("steps") == config.evaluation.steps and rob.get("format") == robustness.FORMAT)
