"""``deadwood cost``: what a method costs over magnitude pruning at one grid point, timed side by side.

    deadwood cost [--dataset digits --model mlp --sparsity 0.95] [--repeats 5] [--threads 1]
        [--variant 'dw-10ep:method=deadwooding,deadwooding.epochs=10,deadwooding.lr=0.003' ...]

Each ``--variant`` is ``label:key=value,...`` over RunConfig's (dotted) fields; the default pair
is ``magnitude`` and ``deadwooding`` at the given settings (see :mod:`deadwood.bench.cost`).
"""
from __future__ import annotations

import os
import warnings

from ..bench.cost import stage_seconds
from ..config import RunConfig, with_updates
from ..device import deadwood_threads
from ..errors import ConfigError
from ..robustness import RobustnessWarning
from .options import check_threads


def add_cost_command(sub) -> None:
    p = sub.add_parser("cost", help="the method-specific stages of several variants timed side by side "
                                    "(medians of interleaved rounds)")
    p.add_argument("--dataset", default="digits", help="(default: digits)")
    p.add_argument("--model", default="mlp", help="(default: mlp)")
    p.add_argument("--data-dir")
    p.add_argument("--sparsity", type=float, default=0.95, help="(default: 0.95)")
    p.add_argument("--sparsities", type=float, nargs="+", help="time each variant's whole grid of these "
                   "sparsities instead (Deadwooding solves once per grid and reuses the solve)")
    p.add_argument("--epsilon", type=float, default=0.1, help="(default: 0.1)")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument("--device", default="auto", help="(default: auto)")
    p.add_argument("--repeats", type=int, default=3, help="(default: 3)")
    p.add_argument("--threads", type=int, help="CPU threads (default: $DEADWOOD_THREADS, else 1, as runs use)")
    p.add_argument("--variant", action="append", help="label:key=value,... (repeatable)")
    p.set_defaults(func=cmd_cost)


def _variant(text: str, base: RunConfig) -> tuple[str, RunConfig]:
    label, _, spec = text.partition(":")
    if not label or not spec:
        raise ConfigError(f"a variant is 'label:key=value,...', got '{text}'")
    updates = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"a variant setting is key=value, got '{item}'")
        updates[key.strip()] = _parse(value.strip())
    return label, with_updates(base, **updates)


def _parse(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def cmd_cost(ns) -> int:
    check_threads(ns.threads)
    base = RunConfig(dataset=ns.dataset, model=ns.model, data_dir=ns.data_dir, sparsity=ns.sparsity,
                     epsilon=ns.epsilon, seed=ns.seed, device=ns.device)
    texts = ns.variant or ["magnitude:method=magnitude", "deadwooding:method=deadwooding"]
    variants = dict(_variant(t, base) for t in texts)
    with deadwood_threads(ns.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", RobustnessWarning)
        res = stage_seconds(variants, ns.repeats, ns.sparsities)
        threads = os.environ.get("DEADWOOD_THREADS", "1")
    ref = res.get("magnitude", next(iter(res.values())))["total"]
    where = (f"grid {' '.join(map(str, ns.sparsities))} (stage seconds summed over the grid)" if ns.sparsities
             else f"sparsity {ns.sparsity}")
    print(f"{ns.dataset}/{ns.model} {where} seed {ns.seed}: median of {ns.repeats} interleaved "
          f"rounds, {threads} thread(s), load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'variant':<24}{'prune':>8}{'finetune':>9}{'eval':>7}{'total':>8}{'ratio':>7}"
          f"{'one-shot':>10}{'clean':>7}{'robust':>8}")
    for label, r in res.items():
        print(f"{label:<24}{r['prune']:>8.2f}{r['finetune']:>9.2f}{r['eval']:>7.2f}{r['total']:>8.2f}"
              f"{r['total'] / ref:>6.2f}x{r['one_shot_accuracy']:>10.3f}{r['clean_accuracy']:>7.3f}"
              f"{r['robust_accuracy']:>8.3f}")
    return 0
