"""What a method costs over magnitude pruning at one grid point, timed side by side.

The benchmark's ``time_s`` is each run's own record, taken whenever that run happened to be
computed; on a shared machine two runs can see very different loads. ``stage_seconds`` instead
times the method-specific stages (prune, fine-tune, evaluation; the teacher is shared and
trained once, untimed) of several variants interleaved in one process, ``repeats`` rounds (after
one warm-up round, dropped), and reports medians, so the ratios compare like with like.

    python -m deadwood.cost [--dataset digits --model mlp --sparsity 0.95] [--repeats 5] [--threads 1]
        [--variant 'dw-10ep:method=deadwooding,deadwooding.epochs=10,deadwooding.lr=0.003' ...]

Each ``--variant`` is ``label:key=value,...`` over RunConfig's (dotted) fields; the default pair
is ``magnitude`` and ``deadwooding`` at the given settings. Every variant also reports its
one-shot, clean and robust accuracy from its last round (the rounds are identical in results).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from .config import RunConfig, with_updates
from .errors import ConfigError, DeadwoodError

STAGES = ("prune", "finetune", "eval")


def stage_seconds(variants: dict[str, RunConfig], repeats: int = 3) -> dict[str, dict]:
    """For each labelled configuration (all sharing one teacher: same data, model, seed, teacher
    settings): median seconds of prune, fine-tune and evaluation over ``repeats`` interleaved
    rounds, their total, and the accuracies (one-shot, clean, robust at the run's epsilon)."""
    from .pipeline import cpu_threads, resolve_device

    configs = list(variants.values())
    keys = {c.teacher_key() for c in configs}
    if len(keys) != 1:
        raise ConfigError("every variant must share one teacher (same dataset, model, seed and teacher settings)")
    first = configs[0]
    device = resolve_device(first.device)
    with cpu_threads(device):  # as many threads as a run uses
        return _timed(variants, repeats, first, device)


def _timed(variants: dict[str, RunConfig], repeats: int, first: RunConfig, device) -> dict[str, dict]:
    from .methods import PruneContext, get_method
    from .pipeline import Cache, evaluate, finetune, get_teacher, load_data
    from .train import accuracy

    train, test = load_data(first, device)
    teacher, _ = get_teacher(first, train, test, device, Cache())
    times = {label: {s: [] for s in STAGES} for label in variants}
    results: dict[str, dict] = {}
    for round_ in range(repeats + 1):  # round 0 warms up (lazy imports, allocator) and is dropped
        for label, config in variants.items():
            torch.manual_seed(config.seed)
            t = time.perf_counter()
            res = get_method(config.method).prune(PruneContext(teacher, config, train, test, device))
            times[label]["prune"].append(time.perf_counter() - t)
            one_shot = accuracy(res.model, test)
            t = time.perf_counter()
            finetune(res.model, teacher, res.mask, config, train, test, constraints=res.constraints)
            times[label]["finetune"].append(time.perf_counter() - t)
            t = time.perf_counter()
            clean, curve = evaluate(res.model, test, config)
            times[label]["eval"].append(time.perf_counter() - t)
            robust = dict(zip(curve["epsilons"], curve["accuracy"])).get(float(config.epsilon))
            results[label] = {"one_shot_accuracy": one_shot, "clean_accuracy": clean, "robust_accuracy": robust}
            if round_ == 0:
                for s in STAGES:
                    times[label][s].pop()
    out = {}
    for label in variants:
        med = {s: statistics.median(times[label][s]) for s in STAGES}
        totals = [sum(times[label][s][i] for s in STAGES) for i in range(repeats)]
        out[label] = {**med, "total": statistics.median(totals), "all_totals": totals, **results[label]}
    return out


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


def main(argv=None) -> int:
    import os
    import warnings

    from .robustness import RobustnessWarning

    p = argparse.ArgumentParser(prog="python -m deadwood.cost", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--model", default="mlp")
    p.add_argument("--data-dir")
    p.add_argument("--sparsity", type=float, default=0.95)
    p.add_argument("--epsilon", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="CPU threads (default: $DEADWOOD_THREADS, else 1, as runs use)")
    p.add_argument("--variant", action="append", help="label:key=value,... (repeatable)")
    ns = p.parse_args(argv)
    try:
        if ns.threads:
            os.environ["DEADWOOD_THREADS"] = str(ns.threads)  # this process only: what cpu_threads reads
        base = RunConfig(dataset=ns.dataset, model=ns.model, data_dir=ns.data_dir, sparsity=ns.sparsity,
                         epsilon=ns.epsilon, seed=ns.seed, device=ns.device)
        texts = ns.variant or ["magnitude:method=magnitude", "deadwooding:method=deadwooding"]
        variants = dict(_variant(t, base) for t in texts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RobustnessWarning)
            res = stage_seconds(variants, ns.repeats)
    except DeadwoodError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ref = res.get("magnitude", next(iter(res.values())))["total"]
    print(f"{ns.dataset}/{ns.model} sparsity {ns.sparsity} seed {ns.seed}: median of {ns.repeats} interleaved "
          f"rounds, {os.environ.get('DEADWOOD_THREADS', '1')} thread(s), load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'variant':<24}{'prune':>8}{'finetune':>9}{'eval':>7}{'total':>8}{'ratio':>7}"
          f"{'one-shot':>10}{'clean':>7}{'robust':>8}")
    for label, r in res.items():
        print(f"{label:<24}{r['prune']:>8.2f}{r['finetune']:>9.2f}{r['eval']:>7.2f}{r['total']:>8.2f}"
              f"{r['total'] / ref:>6.2f}x{r['one_shot_accuracy']:>10.3f}{r['clean_accuracy']:>7.3f}"
              f"{r['robust_accuracy']:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
