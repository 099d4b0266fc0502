"""The benchmark: every method on one grid of sparsities and seeds, measured side by side.

``run_bench(spec, out)`` runs each (method, sparsity, seed) point through :func:`deadwood.run`
(so the shared teacher of a seed is trained once and cached, and an interrupted benchmark
resumes from its cached runs), and writes into ``out``:

- ``bench.json``: ``rows`` (one per point, see :func:`row_of`), the grid, the teachers, the
  throughput section; rewritten after every finished point with ``complete: false``, so an
  interruption leaves the rows finished so far;
- ``bench.md``: mean ± standard deviation over seeds per (method, sparsity), the cost of each
  method relative to ``magnitude``, and the throughput table; with ``autoattack`` among the
  spec's ``attacks``, a second table of robust accuracy under PGD and under AutoAttack (on
  ``attack_samples`` test images per run and per seed's teacher, PGD-10 on the same images
  beside it), the ordering of the methods under each, and AutoAttack's cost per image;
- ``attacks.json``: those AutoAttack evaluations (:mod:`deadwood.bench.attacks`), cached by run
  and settings (a resumed benchmark looks them up; an interrupted one leaves the file as it was);
- ``pareto.html`` (and ``pareto.png`` when kaleido can drive a local Chromium): clean against
  robust accuracy, each method in its registry colour, one marker per sparsity, error bars from the seeds.

What ``time_s`` counts: the seconds the run itself spent in its method-specific stages (prune +
fine-tune + evaluation), read from the record's ``timings``, so a cached run reports what it
cost when it was computed, never a look-up time. The teacher is left out: it is the same model
for every method of a seed (its training time is reported once per seed, under ``teachers``).
Run directories are copied to ``out/runs/<method>-<sparsity>-seed<seed>``; a run found there
(its recorded configuration hashing to the point's key) but missing from the cache is put back
into the cache first, so a benchmark also resumes from its own folder when the cache was
cleared or lived elsewhere.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..config import RunConfig, resolve, with_updates
from ..errors import ConfigError
from ..storage.files import atomic_write_bytes, atomic_write_json
from .attacks import (ATTACKS_FILE, BENCH_ATTACKS, Evaluation, attack_settings, extra_evaluation, store_evaluation,
                      stored_evaluation, with_attacks)
from .report import markdown, pareto_figure, summarize, write_figure

TIMED_STAGES = ("prune", "finetune", "eval")  # what time_s adds up (the teacher is shared)
FORMAT = 1


@dataclass(frozen=True)
class BenchSpec:
    """A grid: ``base`` (dataset, model, epsilon and every stage setting) at each method, sparsity
    and seed. ``dense`` does not prune, so it runs once per seed at sparsity 0."""

    base: RunConfig
    methods: tuple[str, ...]
    sparsities: tuple[float, ...]
    seeds: tuple[int, ...]
    attacks: tuple[str, ...] = ("pgd",)  # robust-accuracy columns (see BENCH_ATTACKS)
    attack_samples: int = 200  # test samples of every attack beyond the record's PGD

    def __post_init__(self):
        from ..methods import get_method

        for a in self.attacks:
            if a not in BENCH_ATTACKS:
                raise ConfigError(f"bench reports robust accuracy under {' and '.join(BENCH_ATTACKS)}, not '{a}'")
        if not (isinstance(self.attack_samples, int) and not isinstance(self.attack_samples, bool)
                and self.attack_samples > 0):
            raise ConfigError(f"the attack samples must be a whole number > 0, got {self.attack_samples!r}")

        for name, values in (("method", self.methods), ("sparsity", self.sparsities), ("seed", self.seeds)):
            if not values:
                raise ConfigError(f"the benchmark needs at least one {name}")
            seen = set()
            for v in values:
                if v in seen:
                    raise ConfigError(f"{name} {v} is listed twice")
                seen.add(v)
        for m in self.methods:
            get_method(m)  # names an unknown method and the known ones
        for s in self.seeds:
            if not isinstance(s, int) or isinstance(s, bool) or s < 0:
                raise ConfigError(f"every seed must be a whole number >= 0, got {s!r}")
        for c in self.points():  # every configuration is validated before anything runs
            c.validate()

    def points(self) -> list[RunConfig]:
        """Every grid point, seed by seed (each seed's teacher is trained by its first run)."""
        from ..methods import get_method

        out = []
        for seed in self.seeds:
            for method in self.methods:
                levels = self.sparsities if get_method(method).prunes else (0.0,)
                for sparsity in levels:
                    out.append(with_updates(self.base, method=method, sparsity=float(sparsity), seed=seed))
        return sorted(out, key=lambda c: (self.seeds.index(c.seed), c.sparsity, self._order(c.method)))

    def _order(self, method: str) -> int:
        return self.methods.index(method)

    def extra_attacks(self) -> tuple[str, ...]:
        return tuple(a for a in self.attacks if a != "pgd")


def run_name(config: RunConfig) -> str:
    return f"{config.method}-{config.sparsity:g}-seed{config.seed}"


def method_seconds(timings: dict) -> float:
    """The run's own compute time: its method-specific stages (see the module docstring)."""
    return float(sum(timings.get(k, 0.0) for k in TIMED_STAGES))


def row_of(loaded, run_dir: str, cached: bool, config: Optional[RunConfig] = None) -> dict:
    """One benchmark row from a finished run; ``config``, the point asked for, names the budget
    protocol (a run that both protocols train alike, Deadwooding's, is one cache entry, recorded
    under whichever protocol computed it first)."""
    r, cfg = loaded.record, loaded.record.config
    eps = cfg["epsilon"]
    teacher_rob = dict(zip(r.teacher.get("robustness", {}).get("epsilons", []),
                           r.teacher.get("robustness", {}).get("accuracy", [])))
    return {
        "method": cfg["method"], "sparsity": cfg["sparsity"], "seed": cfg["seed"],
        "clean_accuracy": r.clean_accuracy, "robust_accuracy": r.robust_accuracy(eps),
        "one_shot_accuracy": r.one_shot_accuracy, "time_s": method_seconds(r.timings),
        "global_sparsity": r.global_sparsity,
        # epochs after the teacher, in all and by stage, and the optimiser steps of each (deadwood.methods.budget)
        "train_epochs": {**r.train_epochs, "protocol": config.budget if config is not None
                         else r.train_epochs.get("protocol", cfg.get("budget"))},
        "timings": {k: r.timings.get(k) for k in (*TIMED_STAGES, "teacher_training")},
        "teacher_clean_accuracy": r.teacher.get("clean_accuracy"),
        "teacher_robust_accuracy": teacher_rob.get(eps),
        # Deadwooding's Stage 1 is solved once per (seed, epsilon, solve settings): the first sparsity's
        # time_s includes the solve, every other one's starts from it (see deadwood.storage.solves).
        "solve_cached": r.prune_info.get("solve_cached"),
        "run": run_dir, "key": r.key, "cached": cached, "device": cfg.get("device"),
        "warnings": list(r.robustness.get("warnings") or []),  # failed robustness sanity checks
    }


def evaluations(spec: "BenchSpec", points: list[RunConfig], cache: Path) -> list:
    """The attacks ``spec`` asks beyond PGD that ``cache`` (``attacks.json``) lacks, as
    :class:`deadwood.bench.attacks.Evaluation` jobs: every point's model, and each seed's teacher
    (from that seed's first point, whose run holds the teacher's weights)."""
    jobs, teachers = [], set()
    for config in points:
        targets = [("model", f"runs/{run_name(config)}", config.key())]
        if config.seed not in teachers:
            teachers.add(config.seed)
            targets.append(("dense", f"teacher-seed{config.seed}", config.teacher_key()))
        for target, name, model_key in targets:
            for attack in spec.extra_attacks():
                settings = attack_settings(attack, config.epsilon, spec.attack_samples, config.seed, model_key)
                if stored_evaluation(cache, name, settings) is None:
                    jobs.append((config, Evaluation(name, target, attack, config.epsilon, spec.attack_samples,
                                                    config.seed, settings)))
    return jobs


def _environment(device) -> dict:
    """Where the numbers come from; ``threads`` is what the runs use (``$DEADWOOD_THREADS``, see
    :func:`deadwood.device.cpu_threads`)."""
    import os
    import platform

    import torch

    from ..device import cpu_threads

    with cpu_threads(torch.device(device)):
        threads = torch.get_num_threads()
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on Linux
        load = None
    return {"device": str(device), "threads": threads, "load_average": load,
            "cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__}


def _teachers(rows: list[dict]) -> dict:
    out = {}
    for r in rows:
        if r["seed"] not in out:
            out[r["seed"]] = {"clean_accuracy": r["teacher_clean_accuracy"],
                              "robust_accuracy": r["teacher_robust_accuracy"],
                              "seconds": r["timings"].get("teacher_training"),
                              **{k[len("teacher_"):]: v for k, v in r.items()
                                 if k.startswith("teacher_") and k.endswith("attack_accuracy")}}
    return {str(k): v for k, v in sorted(out.items())}



def _result(spec: Optional[BenchSpec], rows: list[dict], complete: bool, env: dict, **extra) -> dict:
    base = spec.base if spec is not None else None
    grid = {"dataset": extra.pop("dataset", base.dataset if base else None),
            "model": extra.pop("model", base.model if base else None),
            "epsilon": extra.pop("epsilon", base.epsilon if base else None),
            "budget": base.budget if base else None,
            "methods": list(spec.methods) if spec else [], "sparsities": list(spec.sparsities) if spec else [],
            "seeds": list(spec.seeds) if spec else [], "points": len(spec.points()) if spec else 0}
    return {"format": FORMAT, "complete": complete, "grid": grid,
            "evaluation": {"attack": "pgd", "steps": base.evaluation.steps if base else None,
                           "samples": base.evaluation.samples if base else None,
                           "attacks": list(spec.attacks) if spec else ["pgd"],
                           "attack_samples": spec.attack_samples if spec and spec.extra_attacks() else None,
                           "packages": _packages(spec)},
            "config": base.to_dict() if base else None, "environment": env,
            "rows": rows, "teachers": _teachers(rows), **extra}


def _packages(spec: Optional[BenchSpec]) -> dict:
    from .. import robustness

    attacks = spec.attacks if spec else ("pgd",)
    return {a: robustness.package_info(robustness.ATTACK_INFO[a]["package"]) for a in attacks}


def run_bench(spec: BenchSpec, out, *, cache_dir=None, on_point: Optional[Callable] = None,
              on_event=None, throughput=True, command: str = "", note: str = "", deploy=False, executor=None,
              on_task: Optional[Callable] = None) -> dict:
    """Run every point of ``spec`` (cached ones are look-ups), then measure throughput, and write
    ``bench.json``, ``bench.md`` and ``pareto.html`` (+ ``pareto.png``) into ``out``.

    ``on_point(index, total, config, state)`` is called before (``state`` 'start') and after
    (``'done'`` or ``'cached'``) each point; ``on_event`` is passed to :func:`deadwood.run`.
    ``throughput``: True measures it here (:func:`measure_throughput`), a callable is called for it
    after the grid, a dict is taken as measured, False skips it. ``deploy``: False skips the
    deployment section; True or a dict of settings (``repeats``, ``warmup``) measures it
    (:func:`deadwood.bench.deployment.measure_deployment`).
    after the grid, a dict is taken as measured, False skips it.

    With ``executor`` (an entered :class:`deadwood.bench.executor.RayExecutor`), every entry the
    grid lacks is first computed on it (``on_task`` is its ``on_progress``); the rows are then read
    from the cache exactly as without it. A task that failed leaves its point out: the result lists
    it under ``failures`` and is marked incomplete.
    """
    from ..device import resolve_device
    from ..pipeline import check_method, run

    from ..data.datasets import load_split

    points = spec.points()
    device = resolve_device(spec.base.device)
    b = spec.base
    resolve(points[0])  # the points differ in method, sparsity and seed only: what resolve reads is shared
    load_split(b, "train")  # a missing data set fails before any write
    for config in points:  # and so does a method that cannot spend its stage (a GMP schedule short of κ)
        check_method(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = _environment(device)
    rows: list[dict] = []
    failures, fresh, ran = [], set(), {}
    if executor is not None:
        from ..pipeline import Cache

        for config in points:
            restore_run(config, out / "runs" / run_name(config), cache_dir)
        attacks_file = out / ATTACKS_FILE
        outcome = executor.compute(points, cache_dir, on_task, evaluations=evaluations(spec, points, attacks_file),
                                   on_evaluated=lambda job, entry: store_evaluation(attacks_file, job.name, entry))
        # an evaluation that failed on a worker is run again here, below, and fails here if it must
        failures = [f.as_dict() for f in outcome.failed if f.task.kind != "attack"]
        fresh = outcome.computed_runs()
        ran = {"executor": {"workers": executor.workers, "address": executor.address,
                            "threads_per_worker": executor.threads}}
        points = [c for c in points if Cache(cache_dir).has_run(c)]
    tests: dict = {}
    teacher_model = None  # a trained model for timing AutoAttack (its cost depends on what survives)
    for i, config in enumerate(points):
        if on_point:
            on_point(i, len(points), config, "start")
        cached = [] if executor is None else [config.key() not in fresh]

        def events(e, _cached=cached):
            if e.kind == "cached" and e.stage == "run":
                _cached.append(True)
            if on_event:
                on_event(e)

        name = f"runs/{run_name(config)}"
        restore_run(config, out / name, cache_dir)
        loaded = run(config, on_event=None if executor else events, cache_dir=cache_dir, out=out / name,
                     force=True)  # its own copy
        row = row_of(loaded, name, any(cached), config)
        if spec.extra_attacks():
            if config.seed not in tests:
                tests[config.seed] = load_split(config, "test")
            test = tests[config.seed]
            extra, teacher = {}, {}
            for attack in spec.extra_attacks():
                common = (test, attack, config.epsilon, spec.attack_samples, config.seed, out / ATTACKS_FILE)
                extra[attack] = extra_evaluation(loaded.model, *common, name, on_event=on_event,
                                                 model_key=config.key())
                teacher[attack] = extra_evaluation(loaded.dense(), *common, f"teacher-seed{config.seed}",
                                                   on_event=on_event, model_key=config.teacher_key())
            row = with_attacks(row, extra, teacher)
            if teacher_model is None:
                teacher_model = (loaded.dense(), test)
        rows.append(row)
        atomic_write_json(out / "bench.json", _result(spec, rows, False, env, command=command, note=note,
                                                      failures=failures, **ran))
        if on_point:
            on_point(i, len(points), config, "cached" if any(cached) else "done")

    if throughput is True:
        throughput = measure_throughput(spec.base, device)
    elif callable(throughput):
        throughput = throughput()
    if isinstance(throughput, dict) and "autoattack" in spec.extra_attacks() and teacher_model is not None:
        from .throughput import add_autoattack_cost

        throughput = add_autoattack_cost(throughput, *teacher_model, epsilon=b.epsilon, samples=spec.attack_samples,
                                         seed=points[0].seed)
    section = None
    if deploy:
        from .deployment import measure_deployment

        section = measure_deployment(rows, out, **(deploy if isinstance(deploy, dict) else {}))
    result = _result(spec, rows, not failures, env, command=command, note=note,
                     throughput=throughput if throughput else None, deployment=section, failures=failures, **ran)
    return finish(result, out)


def restore_run(config: RunConfig, run_out: Path, cache_dir=None) -> bool:
    """Put the finished run at ``run_out`` back into the cache when the cache lacks ``config``'s
    run and the record there is that run (its configuration hashes to the same key, its model
    loads). Returns whether it did."""
    from ..errors import RunFileError
    from ..pipeline import Cache
    from ..storage.record import DENSE_FILE, RECORD_FILE, copy_run, load_run

    cache, run_out = Cache(cache_dir), Path(run_out)
    if cache.has_run(config) or not all((run_out / f).is_file() for f in (RECORD_FILE, DENSE_FILE)):
        return False
    try:
        loaded = load_run(run_out)
    except (RunFileError, OSError):
        return False  # damaged or foreign: computed afresh, and the copy in ``out`` replaced
    try:
        same = RunConfig.from_dict(loaded.record.config).key() == config.key()
    except (ConfigError, TypeError):
        same = False
    if not same:
        return False  # a different configuration under the same name
    try:
        final = copy_run(run_out, cache.run_dir(config), replace=True)
    except RunFileError:
        return False  # a damaged entry in the cache's way: computed afresh, which replaces it
    if loaded.record.key != config.key():  # recorded under an older key function: re-addressed
        record = json.loads((final / RECORD_FILE).read_text())
        atomic_write_json(final / RECORD_FILE, {**record, "key": config.key()})
    return True


def measure_throughput(base: RunConfig, device, **kwargs) -> dict:
    """:func:`deadwood.bench.throughput.step_throughput` on the benchmark's data, model and device."""
    from ..data.datasets import load_split
    from .throughput import step_throughput

    from ..device import cpu_threads

    train, test = load_split(base, "train"), load_split(base, "test")
    with cpu_threads(device):  # the thread count the runs use
        return step_throughput(base.model, train, test, epsilon=base.epsilon, batch_size=base.batch_size,
                               device=device, amp=base.amp, pgd_steps=base.evaluation.steps, config=base, **kwargs)


def finish(result: dict, out: Path) -> dict:
    """Draw the chart and write the three files (each atomically)."""
    out = Path(out)
    summary = summarize(result["rows"])
    if summary:
        g = result["grid"]
        fig = pareto_figure(summary, g["epsilon"], f"{g['dataset']} / {g['model']}: clean vs robust accuracy "
                                                   f"(mean ± std over seeds {' '.join(map(str, g['seeds']))})")
        png, why = write_figure(fig, out)
        result["figure"] = png or "pareto.html"
        result["figure_note"] = why
    else:
        result["figure"], result["figure_note"] = None, "no rows: no chart"
    result["summary"] = summary
    atomic_write_json(out / "bench.json", result)
    atomic_write_bytes(out / "bench.md", markdown(result).encode())
    return result


def synthetic_throughput(model: str, device, *, amp: bool = False, epsilon: float = 0.1, batch_size: int = 128,
                         samples: int = 2048, config: Optional[RunConfig] = None, **kwargs) -> dict:
    """Throughput of ``model`` on the labelled synthetic 32x32 stand-in (CIFAR-10 absent)."""
    from ..device import cpu_threads
    from .throughput import step_throughput, synthetic_32x32

    data = synthetic_32x32(samples)
    with cpu_threads(device):
        return step_throughput(model, data, data, epsilon=epsilon, batch_size=batch_size, device=device, amp=amp,
                               config=config, **kwargs)


def timing_only(model: str, out, throughput: dict, *, epsilon: float, command: str = "", note: str = "") -> dict:
    """Write a benchmark with no grid (the synthetic stand-in): the throughput section only."""
    env = _environment(throughput["device"])
    result = _result(None, [], True, env, command=command, note=note, throughput=throughput,
                     dataset=throughput["dataset"], model=model, epsilon=epsilon)
    Path(out).mkdir(parents=True, exist_ok=True)
    return finish(result, Path(out))
