"""What a method costs over magnitude pruning at one grid point, timed side by side.

The benchmark's ``time_s`` is each run's own record, taken whenever that run happened to be
computed; on a shared machine two runs can see very different loads. ``stage_seconds`` instead
times the method-specific stages (prune, fine-tune, evaluation; the teacher is shared and
trained once, untimed) of several variants interleaved in one process, ``repeats`` rounds (after
one warm-up round, dropped), and reports medians, so the ratios compare like with like.

    deadwood cost [--dataset digits --model mlp --sparsity 0.95] [--repeats 5] [--threads 1]
        [--variant 'dw-10ep:method=deadwooding,deadwooding.epochs=10,deadwooding.lr=0.003' ...]

Each ``--variant`` is ``label:key=value,...`` over RunConfig's (dotted) fields; the default pair
is ``magnitude`` and ``deadwooding`` at the given settings. Every variant also reports its
one-shot, clean and robust accuracy from its last round (the rounds are identical in results).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from typing import Optional, Sequence

import torch

from ..config import RunConfig, with_updates
from ..errors import ConfigError

STAGES = ("prune", "finetune", "eval")


def stage_seconds(variants: dict[str, RunConfig], repeats: int = 3,
                  sparsities: Optional[Sequence[float]] = None) -> dict[str, dict]:
    """For each labelled configuration (all sharing one teacher: same data, model, seed, teacher
    settings): median seconds of prune, fine-tune and evaluation over ``repeats`` interleaved
    rounds, their total, and the accuracies (one-shot, clean, robust at the run's epsilon).

    With ``sparsities``, a round of a variant is its whole grid, each κ in turn, the way ``bench``
    runs it: a method with a cached Stage 1 (Deadwooding) solves once per round and every other
    κ starts from that solve; the stage seconds add up over the grid, and ``by_sparsity`` holds
    each κ's accuracies."""
    from ..device import cpu_threads, resolve_device

    configs = list(variants.values())
    keys = {c.teacher_key() for c in configs}
    if len(keys) != 1:
        raise ConfigError("every variant must share one teacher (same dataset, model, seed and teacher settings)")
    first = configs[0]
    device = resolve_device(first.device)
    with cpu_threads(device):  # as many threads as a run uses
        return _timed(variants, repeats, first, device, sparsities)


def _timed(variants: dict[str, RunConfig], repeats: int, first: RunConfig, device,
           sparsities: Optional[Sequence[float]]) -> dict[str, dict]:
    from ..methods import PruneContext, get_method
    from ..pipeline import Cache, evaluate, finetune, get_teacher, load_data
    from ..robustness.accuracy import accuracy

    train, test = load_data(first, device)
    teacher, _ = get_teacher(first, train, test, device, Cache())
    times = {label: {s: [] for s in STAGES} for label in variants}
    results: dict[str, dict] = {}
    for round_ in range(repeats + 1):  # round 0 warms up (lazy imports, allocator) and is dropped
        for label, config in variants.items():
            grid = [config] if sparsities is None else [with_updates(config, sparsity=k) for k in sparsities]
            spent = dict.fromkeys(STAGES, 0.0)
            with tempfile.TemporaryDirectory() as scratch:  # one solve per round, as a fresh grid pays
                solves = Cache(scratch).solves if sparsities is not None else None
                for c in grid:
                    torch.manual_seed(c.seed)
                    t = time.perf_counter()
                    res = get_method(c.method).prune(PruneContext(teacher, c, train, test, device, solves=solves))
                    spent["prune"] += time.perf_counter() - t
                    one_shot = accuracy(res.model, test)
                    t = time.perf_counter()
                    finetune(res.model, teacher, res.mask, c, train, test, constraints=res.constraints)
                    spent["finetune"] += time.perf_counter() - t
                    t = time.perf_counter()
                    clean, curve = evaluate(res.model, test, c)
                    spent["eval"] += time.perf_counter() - t
                    robust = dict(zip(curve["epsilons"], curve["accuracy"])).get(float(c.epsilon))
                    entry = {"one_shot_accuracy": one_shot, "clean_accuracy": clean, "robust_accuracy": robust}
                    results.setdefault(label, {"by_sparsity": {}})
                    results[label].update(entry)
                    results[label]["by_sparsity"][c.sparsity] = entry
            if round_:
                for s in STAGES:
                    times[label][s].append(spent[s])
    out = {}
    for label in variants:
        med = {s: statistics.median(times[label][s]) for s in STAGES}
        totals = [sum(times[label][s][i] for s in STAGES) for i in range(repeats)]
        out[label] = {**med, "total": statistics.median(totals), "all_totals": totals, **results[label]}
    return out
