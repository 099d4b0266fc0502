"""``deadwood run``: teacher -> prune -> fine-tune -> evaluate, one configuration."""
from __future__ import annotations

import sys

from ..progress import progress_bars
from .options import add_config_arguments, config_from_args


def add_run_command(sub) -> None:
    r = sub.add_parser("run", help="teacher -> prune -> fine-tune -> evaluate; writes a run directory")
    add_config_arguments(r)
    r.add_argument("--out", help="also copy the run directory here: a new or empty folder, or with --force "
                                 "a previous run directory (nothing else is ever replaced)")
    r.add_argument("--force", action="store_true", help="replace the previous run directory at --out")
    r.add_argument("--cache-dir", help="cache folder (default: $DEADWOOD_CACHE or ~/.cache/deadwood)")
    r.add_argument("--no-cache", action="store_true", help="recompute even when a cached result exists")
    r.set_defaults(func=cmd_run)


def _summary(loaded) -> str:
    r = loaded.record
    eps = r.config["epsilon"]
    rob = r.robust_accuracy(eps)
    t = r.timings
    lines = [
        f"run       {loaded.path}",
        f"method    {r.config['method']}  sparsity {r.global_sparsity:.4f}  epsilon {eps}",
        f"accuracy  one-shot {r.one_shot_accuracy:.4f}  clean {r.clean_accuracy:.4f}  "
        f"robust@{eps} {rob if rob is None else format(rob, '.4f')}",
        f"teacher   clean {r.teacher.get('clean_accuracy', float('nan')):.4f}",
        "training  " + _epochs_line(r.train_epochs),
        "checks    " + "  ".join(f"{who} {_checks_line(rob_)}" for who, rob_ in
                                 (("pruned", r.robustness), ("teacher", r.teacher.get("robustness", {})))),
        "seconds   " + "  ".join(f"{k} {v:.2f}" for k, v in t.items()),
    ]
    return "\n".join(lines)


def _epochs_line(train_epochs: dict) -> str:
    """The record's budget after the teacher: epochs and optimiser steps by stage."""
    if not train_epochs:
        return "not recorded"
    return (f"{train_epochs['total']} epochs after the teacher: "
            + ", ".join(f"{name} {n} ({train_epochs['steps'][name]} steps)"
                        for name, n in train_epochs["by_stage"].items()))


def _checks_line(robustness: dict) -> str:
    checks = robustness.get("checks") or []
    failed = [c["name"] for c in checks if c.get("passed") is False]
    if not checks:
        return "not run"
    return f"FAILED ({', '.join(failed)})" if failed else "passed"


def _robustness_warnings(record) -> list[str]:
    """The failed sanity checks of both models, as the one-line warnings the CLI prints."""
    return [f"warning: {who}: {m}" for who, rob in (("pruned", record.robustness),
                                                    ("teacher", record.teacher.get("robustness", {})))
            for m in rob.get("warnings") or []]


def cmd_run(ns) -> int:
    import warnings

    from ..methods.budget import plan
    from ..pipeline import run
    from ..robustness import RobustnessWarning

    config = config_from_args(ns)
    print(plan(config).describe(), flush=True)  # before the progress bars: what each stage will train
    with warnings.catch_warnings():
        # Printed below from the record instead, as one line each (and again for a cached run).
        warnings.simplefilter("ignore", RobustnessWarning)
        loaded = run(config, on_event=progress_bars(), cache_dir=ns.cache_dir, out=ns.out, force=ns.force,
                     use_cache=not ns.no_cache)
    print(_summary(loaded))
    for line in _robustness_warnings(loaded.record) + [f"warning: {m}" for m in loaded.record.warnings]:
        print(line, file=sys.stderr)
    if ns.out:
        print(f"written   {ns.out}")
    return 0
