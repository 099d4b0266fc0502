"""``deadwood eval --run DIR --attack pgd --epsilons 0 0.05 0.1 0.2 [--samples N]``.

``--attack autoattack`` (or ``autoattack-l2``) runs AutoAttack's standard version, with PGD-10 on
the same samples for the ``pgd-vs-autoattack`` check; it is slow on a CPU (seconds per batch and
epsilon whatever the batch size), and a bar per model shows each component as it finishes.
Interrupted, it leaves the record as it was: the record is written once, after both models.

Re-evaluates a finished run: the pruned model and its dense teacher, on the same samples with
the same seed, and replaces the record's ``robustness`` and ``teacher.robustness`` atomically.
Earlier evaluations stay in ``robustness.by_attack`` (one compact curve per attack name), so
running a second attack adds to the record instead of erasing the first.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError, RunFileError
from ..progress import progress_bars

_SUMMARY_KEYS = ("epsilons", "accuracy", "clean_accuracy", "steps", "samples", "seed", "norm", "package")


def add_eval_command(sub) -> None:
    from ..robustness import EVAL_ATTACKS

    e = sub.add_parser("eval", help="re-evaluate a finished run's robustness (pruned and teacher) and update "
                                    "its record")
    e.add_argument("--run", required=True, help="the run directory (record.json, model.pt, dense.pt)")
    e.add_argument("--attack", default="pgd", help=f"one of: {', '.join(EVAL_ATTACKS)} (default: pgd)")
    e.add_argument("--epsilons", type=float, nargs="+", help="budgets to evaluate; 0 is always added "
                   "(default: the run's own)")
    e.add_argument("--samples", type=int, help="test samples to use (default: the run's evaluation.samples)")
    e.add_argument("--steps", type=int, help="attack iterations (default: the run's evaluation.steps for pgd, "
                   "the attack's own otherwise)")
    e.add_argument("--step-size", type=float, help="pgd / pgd-l2 step (default: 2.5 * epsilon / steps)")
    e.add_argument("--seed", type=int, help="random starts and sample choice (default: the run's seed)")
    e.add_argument("--batch-size", type=int, default=512, help="(default: 512)")
    e.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    e.add_argument("--data-dir", help="where the dataset lies (default: the run's data_dir)")
    e.set_defaults(func=cmd_eval)


def _check_run_dir(path: Path) -> None:
    from ..storage.record import MODEL_FILE, RECORD_FILE

    if not path.is_dir():
        raise RunFileError(f"no run directory at {path}")
    if not (path / RECORD_FILE).is_file():
        raise RunFileError(f"{path} is not a run directory: {RECORD_FILE} is missing")
    if not (path / MODEL_FILE).is_file():
        raise RunFileError(f"run directory {path} has no model: {MODEL_FILE} is missing")


def merge(old: dict | None, new: dict) -> dict:
    """``new`` with ``by_attack`` carried over from ``old`` and updated with ``new``'s own curve."""
    old = old or {}
    by_attack = dict(old.get("by_attack") or {})
    if old.get("attack") and old["attack"] not in by_attack:
        by_attack[old["attack"]] = {k: old.get(k) for k in _SUMMARY_KEYS}
    by_attack[new["attack"]] = {k: new.get(k) for k in _SUMMARY_KEYS}
    return {**new, "by_attack": by_attack}


def cmd_eval(ns) -> int:
    from .. import robustness
    import dataclasses

    from ..data.datasets import load_split
    from ..device import resolve_device
    from ..storage.record import DENSE_FILE, load_run, update_record

    if ns.attack not in robustness.EVAL_ATTACKS:
        raise ConfigError(f"unknown attack '{ns.attack}'; choose one of: {', '.join(robustness.EVAL_ATTACKS)}")
    if ns.epsilons is not None:
        robustness.check_epsilons(ns.epsilons)
    if ns.samples is not None and ns.samples <= 0:
        raise ConfigError(f"samples must be a whole number > 0, got {ns.samples}")
    path = Path(ns.run)
    _check_run_dir(path)
    loaded = load_run(path)
    cfg = loaded.config
    device = resolve_device(ns.device)
    test = load_split(dataclasses.replace(cfg, data_dir=ns.data_dir or cfg.data_dir), "test")
    epsilons = ns.epsilons if ns.epsilons is not None else cfg.eval_epsilons
    steps = ns.steps if ns.steps is not None else (cfg.evaluation.steps if ns.attack == "pgd" else None)
    kwargs = dict(steps=steps, step_size=ns.step_size, seed=cfg.seed if ns.seed is None else ns.seed,
                  batch_size=ns.batch_size, device=device, warn=False)
    # One subset for both models (what robustness.evaluate_pair does), so each gets its own bar.
    data = test.subset(ns.samples if ns.samples is not None else cfg.evaluation.samples, kwargs["seed"])
    results = {"pruned": robustness.evaluate(loaded.model, data, ns.attack, epsilons, **kwargs,
                                             on_event=progress_bars(f"pruned ({ns.attack})", unit="run"))}
    if (path / DENSE_FILE).is_file():
        results["teacher"] = robustness.evaluate(loaded.dense(), data, ns.attack, epsilons, **kwargs,
                                                 on_event=progress_bars(f"teacher ({ns.attack})", unit="run"))
    else:
        print(f"warning: {path / DENSE_FILE} is missing; only the pruned model was evaluated", file=sys.stderr)

    record = loaded.record
    record.robustness = merge(record.robustness, results["pruned"])
    if "teacher" in results:
        record.teacher = {**record.teacher, "robustness": merge(record.teacher.get("robustness"),
                                                                results["teacher"])}
    update_record(path, record)

    r = results["pruned"]
    print(f"run       {path}")
    pkg = r.get("package") or {}
    print(f"attack    {r['attack']} ({r['norm']})  steps {r['steps']}  samples {r['samples']}  seed {r['seed']}  "
          f"{pkg.get('name')} {pkg.get('version')}")
    print(f"{'epsilon':>9}  {'pruned':>7}" + (f"  {'teacher':>7}" if "teacher" in results else ""))
    for i, e in enumerate(r["epsilons"]):
        line = f"{e:>9g}  {r['accuracy'][i]:>7.4f}"
        if "teacher" in results:
            line += f"  {results['teacher']['accuracy'][i]:>7.4f}"
        print(line)
    for who, res in results.items():
        for message in res["warnings"]:
            print(f"warning: {who}: {message}", file=sys.stderr)
    print(f"updated   {path / 'record.json'}")
    return 0
