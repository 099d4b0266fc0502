"""A grid's work as tasks, without Ray: what each task is and needs, and what a worker runs for it.

A task is one cache entry (a teacher, a Stage 1 solve, a run) or one evaluation (an attack beyond
the record's PGD, :mod:`deadwood.bench.attacks`):

- it ships, as bytes, the entries it starts from (the teacher; for a Deadwooding run, the solve);
- a worker writes them into a private temporary cache, computes its one entry there exactly as
  :func:`deadwood.run` would (:func:`deadwood.pipeline.prepare` for a teacher or a solve), and
  returns that entry's files as bytes;
- the driver publishes them into its own cache atomically (a staging folder, then a rename);
- an evaluation ships the run's entry, and a worker attacks its model (or its teacher, whose
  weights the run holds) and returns the compact result that the benchmark files in
  ``attacks.json`` (:func:`evaluate_entry`; the driver hands it to ``on_evaluated``).

So a worker shares no filesystem with the driver. :func:`plan` lists the tasks a grid needs that the
cache lacks, each entry once, per kind in dependency order (:data:`KINDS`);
:class:`deadwood.bench.executor.RayExecutor` schedules them and says what it did in an :class:`Outcome`.
"""
from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..config import RunConfig
from ..errors import ClusterError
from .attacks import Evaluation

KINDS = ("teacher", "solve", "run", "attack")  # the phases, in dependency order


@dataclass(frozen=True)
class Task:
    """One cache entry to compute: ``kind`` (teacher, solve, run) of ``config``; or, for ``kind``
    'attack', the ``evaluation`` of ``config``'s run (not a cache entry: the benchmark files it)."""

    kind: str
    config: RunConfig
    evaluation: Optional[Evaluation] = None

    def folder(self, root) -> Path:
        """Where the entry lives under the cache ``root`` (an evaluation: its run's entry)."""
        from ..storage.cache import Cache

        if self.kind == "teacher":
            return Cache(root).teacher_dir(self.config)
        if self.kind == "solve":
            return Cache(root).solve_dir(self.config)
        return Cache(root).run_dir(self.config)

    def cached(self, root) -> bool:
        from ..storage.cache import Cache

        if self.kind == "teacher":
            return Cache(root).has_teacher(self.config)
        if self.kind == "solve":
            return Cache(root).solves.has(self.config)
        return Cache(root).has_run(self.config)

    def needs(self) -> list["Task"]:
        """The entries this task starts from."""
        if self.kind == "teacher":
            return []
        if self.kind == "attack":
            return [Task("run", self.config)]
        if self.kind == "solve" or not self.config.stores_solve():
            return [Task("teacher", self.config)]
        return [Task("teacher", self.config), Task("solve", self.config)]

    @property
    def label(self) -> str:
        c = self.config
        if self.kind == "teacher":
            return f"teacher of seed {c.seed}"
        if self.kind == "solve":
            return f"{c.method} solve at ε {c.epsilon:g}, seed {c.seed}"
        if self.kind == "attack":
            e = self.evaluation
            return f"{e.attack} of {e.name if e.target == 'model' else 'the teacher'} at ε {e.epsilon:g}"
        return f"{c.method} at sparsity {c.sparsity:g}, seed {c.seed}"

    def as_dict(self) -> dict:
        c = self.config
        return {"kind": self.kind, "method": c.method, "sparsity": c.sparsity, "seed": c.seed,
                "epsilon": c.epsilon, **({"evaluation": self.evaluation.name, "attack": self.evaluation.attack}
                                         if self.evaluation else {})}


@dataclass(frozen=True)
class Failure:
    task: Task
    error: str

    def __str__(self) -> str:
        return f"{self.task.label}: {self.error}"

    def as_dict(self) -> dict:
        return {**self.task.as_dict(), "error": self.error}


@dataclass
class Outcome:
    """What :meth:`RayExecutor.compute` did: the entries it computed, the tasks that failed (or
    could not start because an entry they need failed), and what it found cached."""

    computed: list[Task] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    cached: int = 0

    def computed_runs(self) -> set[str]:
        return {t.config.key() for t in self.computed if t.kind == "run"}


def plan(configs: Sequence[RunConfig], cache_dir=None) -> dict[str, list[Task]]:
    """The tasks ``configs`` need that the cache lacks, per kind, each entry once, in grid order."""
    from ..storage.cache import Cache

    root = Cache(cache_dir).root
    phases: dict[str, list[Task]] = {k: [] for k in KINDS}
    seen: set[Path] = set()
    for config in configs:
        run = Task("run", config.validate())
        for task in (*run.needs(), run):
            where = task.folder(root)
            if where not in seen:
                seen.add(where)
                if not task.cached(root):
                    phases[task.kind].append(task)
    return phases


def read_entry(root, task: Task) -> dict[str, bytes]:
    """The files of ``task``'s entry under ``root``, by name."""
    folder = task.folder(root)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def write_entry(root, task: Task, files: dict[str, bytes]) -> None:
    """Publish ``files`` as ``task``'s entry under ``root``: written into a staging folder, then
    renamed into place, so a reader sees the whole entry or none of it."""
    from ..storage.files import atomic_write_bytes, staged

    with staged(task.folder(root)) as tmp:
        for name, data in files.items():
            if Path(name).name != name or name.startswith("."):
                raise ClusterError(f"a worker returned an entry file with a bad name: {name!r}")
            atomic_write_bytes(tmp / name, data)


def _same_code(code: str) -> None:
    """Refuse to work when this worker runs other engine code than the driver (``code``, its
    :func:`deadwood.fingerprint.code_fingerprint`): its entries would be filed under other keys."""
    from ..fingerprint import code_fingerprint

    mine = code_fingerprint()
    if mine != code:
        raise ClusterError(f"the worker on {socket.gethostname()} runs other deadwood code (fingerprint {mine}, "
                           f"the driver's {code}): install the same version on every machine")


def compute_entry(kind: str, config: RunConfig, code: str, threads: int, *entries) -> dict[str, bytes]:
    """What a worker runs: compute ``kind`` of ``config`` in a private cache seeded with ``entries``
    (``(kind, files)`` pairs, the entries it needs) and return the new entry's files.

    ``code`` is the driver's :func:`deadwood.fingerprint.code_fingerprint`: a worker running other
    code would file its entry under another key, so it refuses instead."""
    from ..pipeline import prepare, run

    _same_code(code)
    os.environ["DEADWOOD_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory(prefix="deadwood-task-") as root:
        for need_kind, files in entries:
            write_entry(root, Task(need_kind, config), files)
        task = Task(kind, config)
        if kind == "run":
            run(config, cache_dir=root)
        else:
            prepare(config, kind, cache_dir=root)
        return read_entry(root, task)


def evaluate_entry(config: RunConfig, code: str, threads: int, evaluation: Evaluation, entry) -> dict:
    """What a worker runs for an evaluation: ``entry`` (``('run', files)``, the run of ``config``)
    written into a private cache, its pruned model or its teacher attacked as the benchmark's driver
    would (:func:`deadwood.bench.attacks.evaluate_attack`), and the compact result returned."""
    from ..data.datasets import load_split
    from ..device import cpu_threads, resolve_device
    from ..storage.record import load_run
    from .attacks import evaluate_attack

    _same_code(code)
    os.environ["DEADWOOD_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory(prefix="deadwood-task-") as root:
        run = Task("run", config)
        write_entry(root, run, entry[1])
        loaded = load_run(run.folder(root))
        model = loaded.model if evaluation.target == "model" else loaded.dense()
        e = evaluation
        with cpu_threads(resolve_device(config.device)):
            return evaluate_attack(model, load_split(config, "test"), e.attack, e.epsilon, e.samples, e.seed,
                                   e.settings)
