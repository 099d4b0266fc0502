"""Analysis jobs: a lens's or the explorer's computation run as a job, like a run, and its result
kept on disk by its inputs.

An :class:`Analysis` names a registered function (:data:`ANALYSES`, the one list of them) and its
inputs (JSON-able values and :class:`deadwood.RunConfig` objects). A :class:`app.jobs.job.Job` of
one analysis computes it in a worker process, in the same queue as runs, with the same events,
Stop and sharing; the worker writes the result to ``<cache>/analyses/<name>-<digest>.npz``
(:meth:`Analysis.path`), and pages load it from there (:func:`load`). The digest covers the
function's name, its inputs (so the runs' configurations) and the code that computes it: the
engine's fingerprint (which every run key holds) and the source of ``deadwood/analysis`` and
:mod:`app.jobs.analyses`, which the fingerprint leaves out.

Results are stored without pickle: one ``.npz`` holding the numpy arrays and, as UTF-8 bytes, a
JSON document that refers to them; it is read back with ``allow_pickle=False``.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deadwood import Event, RunConfig
from deadwood.fingerprint import code_fingerprint
from deadwood.storage.analyses import FOLDER  # the cache's analyses folder, which `deadwood cache` reads

from .progress import StageProgress, current_stage

# name -> (importable "module:function", the stages its events name, in order, with their labels)
ANALYSES: dict[str, tuple[str, dict[str, str]]] = {
    "regions": ("app.jobs.analyses:regions", {
        "regions-dense": "Linear regions of the dense teacher", "regions-pruned": "Linear regions of the pruned model",
        "bound": "Expected region bound at each sparsity"}),
    "similarity": ("app.jobs.analyses:similarity", {
        "svcca": "SVCCA against the teacher, model by model", "teacher": "Training a reference model",
        "finetune": "Fine-tuning the random-mask reference"}),
    "distortion": ("app.jobs.analyses:distortion", {"distortion": "Reading per-class recall from the records"}),
    "explore": ("app.jobs.analyses:explore", {
        "examples": "Adversarial examples, dense and pruned", "recall": "Per-class recall under attack",
        "security": "Security curves (minimal perturbations)"}),
}
_CONFIG, _ARRAY, _ITEMS = "__config__", "__array__", "__items__"  # tags in the stored JSON


def function(name: str) -> Callable:
    """The registered function called ``name``."""
    module, _, attr = ANALYSES[name][0].partition(":")
    return getattr(importlib.import_module(module), attr)


@functools.cache
def code_version() -> str:
    """A hash of the code an analysis result depends on (see the module docstring)."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256(code_fingerprint().encode())
    for path in sorted((root / "deadwood" / "analysis").glob("*.py")) + [Path(__file__).with_name("analyses.py")]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data: configurations tagged, tuples as lists."""
    if isinstance(value, RunConfig):
        return {_CONFIG: value.to_dict()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"an analysis input must be JSON-able or a RunConfig, not {type(value).__name__}")


def _inputs(value: Any) -> Any:
    """The inverse of :func:`_plain` (configurations rebuilt)."""
    if isinstance(value, dict):
        if set(value) == {_CONFIG}:
            return RunConfig.from_dict(value[_CONFIG])
        return {k: _inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_inputs(v) for v in value]
    return value


@dataclass(frozen=True)
class Analysis:
    """One computation: the registered function ``name`` called with ``inputs`` (canonical JSON).

    It stands where a job otherwise holds a configuration: :meth:`key` names it (sharing, the
    job's finished list), :meth:`compute` is what the worker runs instead of ``deadwood.run``, and
    ``progress_type`` reads its events."""

    name: str
    text: str  # the inputs, canonical JSON (hashable, so two pages asking the same share one job)
    label: str = ""  # what the page says it computes

    @classmethod
    def of(cls, name: str, inputs: dict, label: str = "") -> "Analysis":
        if name not in ANALYSES:
            raise KeyError(f"no analysis called {name!r}; registered: {', '.join(ANALYSES)}")
        return cls(name, json.dumps(_plain(inputs), sort_keys=True, allow_nan=False), label or name)

    @property
    def inputs(self) -> dict:
        return _inputs(json.loads(self.text))

    def key(self) -> str:
        """A digest of the function's name, its inputs and the code that computes it."""
        blob = json.dumps([self.name, self.text, code_version()])
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def path(self, cache_dir) -> Path:
        """Where its result is stored, under the engine's cache folder ``cache_dir``."""
        return Path(cache_dir) / FOLDER / f"{self.name}-{self.key()}.npz"

    def stages(self) -> dict[str, str]:
        """Its stages, in order, with their labels."""
        return ANALYSES[self.name][1]

    def compute(self, on_event=None, cache_dir=None) -> None:
        """Compute the result (runs read from ``cache_dir``) and store it at :meth:`path`."""
        from deadwood.storage.files import default_cache_dir

        root = cache_dir if cache_dir is not None else default_cache_dir()
        result = function(self.name)(**self.inputs, on_event=on_event, cache_dir=root)
        save(self.path(root), result)

    @property
    def progress_type(self):
        return AnalysisProgress


# ------------------------------------------------------------------ results on disk, without pickle
def encode(result: Any) -> tuple[str, dict[str, np.ndarray]]:
    """``result`` as JSON text and the arrays it refers to. Dicts with keys other than strings (or
    with a reserved tag as a key) keep their keys as ``[key, value]`` pairs; tuples become lists."""
    arrays: dict[str, np.ndarray] = {}

    def walk(v):
        if hasattr(v, "detach") and hasattr(v, "numpy"):  # a torch tensor
            v = v.detach().cpu().numpy()
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise TypeError("object arrays cannot be stored without pickle")
            name = f"a{len(arrays)}"
            arrays[name] = v
            return {_ARRAY: name}
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, dict):
            if all(isinstance(k, str) for k in v) and not {_ARRAY, _ITEMS, _CONFIG} & set(v):
                return {k: walk(x) for k, x in v.items()}
            return {_ITEMS: [[walk(k), walk(x)] for k, x in v.items()]}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if v is None or isinstance(v, (str, bool, int, float)):
            return v
        raise TypeError(f"an analysis result cannot hold {type(v).__name__}")

    return json.dumps(walk(result)), arrays


def decode(text: str, arrays) -> Any:
    def walk(v):
        if isinstance(v, dict):
            if set(v) == {_ARRAY}:
                return arrays[v[_ARRAY]]
            if set(v) == {_ITEMS}:
                return {_hashable(walk(k)): walk(x) for k, x in v[_ITEMS]}
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(json.loads(text))


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def save(path: Path, result: Any) -> None:
    """Store ``result`` at ``path`` atomically (a temporary file in the same folder, then a rename)."""
    text, arrays = encode(result)
    buffer = io.BytesIO()
    np.savez(buffer, __json__=np.frombuffer(text.encode(), dtype=np.uint8), **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> Any | None:
    """The result stored at ``path``, or None when there is none or it cannot be read safely (a
    damaged or foreign file is then computed again)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
        return decode(arrays.pop("__json__").tobytes().decode(), arrays)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, UnicodeDecodeError, zipfile.BadZipFile):
        return None  # ValueError: among others, what allow_pickle=False says of pickled data


# ------------------------------------------------------------------ progress
class AnalysisProgress:
    """What an analysis job's events have said, in the shape :class:`app.jobs.progress.JobView`
    reads: its stages (planned from :data:`ANALYSES`; unplanned ones added as they come) and the
    notices. Events of the runs it reads (all cached) are not stages of its own."""

    def __init__(self, task: Analysis):
        self._notices: list[str] = []
        self._waiting: str | None = None
        self.begin(task)

    def begin(self, task: Analysis) -> None:
        self._stages = {name: StageProgress() for name in task.stages()}

    def snapshot(self) -> dict:
        return dict(stages={k: v.copy() for k, v in self._stages.items()},
                    history=[], cached=[], notices=list(self._notices), waiting=self._waiting)

    def current(self) -> tuple[str | None, StageProgress]:
        """The stage computing now and a copy of its progress (what a page queued behind it shows)."""
        return current_stage(self._stages)

    def record(self, e: Event) -> None:
        if e.kind == "waiting":
            self._waiting = e.metrics.get("message", "waiting for another process computing a run")
            return
        self._waiting = None
        if e.kind == "damaged":
            self._notices.append(e.metrics.get("message", f"a damaged {e.stage} in the cache"))
            return
        if e.kind == "cached":  # a run read from the cache: not this analysis's own progress
            return
        self._stages.setdefault(e.stage, StageProgress()).take(e)
