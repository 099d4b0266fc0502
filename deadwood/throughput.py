"""Throughput of the robustness evaluation: what a sweep costs, and what foolbox costs over plain torch.

``pgd_overhead`` times the project's foolbox PGD (:func:`deadwood.robustness.evaluate`, one
epsilon, checks off) against a plain PyTorch PGD loop (:func:`deadwood.attacks.pgd`, the same
algorithm: random start, ``steps`` signed steps of ``2.5ε/steps``) on the same model, samples,
batch size and steps, each followed by the forward passes that score it. ``sweep_seconds`` times
a whole evaluation as the run record gets it. These are benchmarks, not tests: timings on a
shared machine are noisy, so both report the median of several repeats, interleaved.

    python -m deadwood.throughput [--run DIR] [--epsilon 0.1] [--steps 10] [--repeats 7] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from . import robustness
from .attacks import pgd
from .data import ArrayDataset, batches


def _plain_pgd_accuracy(model: nn.Module, data: ArrayDataset, eps: float, steps: int, batch_size: int,
                        seed: int) -> float:
    """Robust accuracy under plain-torch PGD, doing the work :func:`robustness.evaluate` does for
    one epsilon (a clean forward pass, the attack, a forward pass on its result)."""
    gen = torch.Generator().manual_seed(seed)
    correct = 0
    for x, y in batches(data, batch_size):
        with torch.no_grad():
            model(x)
        xa = pgd(model, x, y, eps, steps, generator=gen)
        with torch.no_grad():
            correct += int((model(xa).argmax(1) == y).sum())
    return correct / len(data)


def pgd_overhead(model: nn.Module, data: ArrayDataset, eps: float = 0.1, steps: int = 10, repeats: int = 7, *,
                 batch_size: int = 512, seed: int = 0) -> dict:
    """Median seconds of foolbox PGD (as evaluated here) and of a plain PyTorch PGD loop on the
    same model, data, batch size and steps; their ratio (foolbox / plain) and both accuracies."""
    was = model.training
    model.eval()
    f_times, p_times = [], []
    f_acc = p_acc = None
    try:
        for _ in range(repeats + 1):  # the first round warms both up (lazy imports, allocator) and is dropped
            t = time.perf_counter()
            r = robustness.evaluate(model, data, "pgd", [eps], steps=steps, seed=seed, batch_size=batch_size,
                                    checks=False)
            f_times.append(time.perf_counter() - t)
            f_acc = r["accuracy"][-1]
            t = time.perf_counter()
            p_acc = _plain_pgd_accuracy(model, data, eps, steps, batch_size, seed)
            p_times.append(time.perf_counter() - t)
    finally:
        model.train(was)
    f, p = statistics.median(f_times[1:]), statistics.median(p_times[1:])
    return {"epsilon": eps, "steps": steps, "samples": len(data), "batch_size": batch_size, "repeats": repeats,
            "foolbox_seconds": f, "plain_seconds": p, "ratio": f / p, "foolbox_accuracy": f_acc,
            "plain_accuracy": p_acc, "foolbox_all": f_times[1:], "plain_all": p_times[1:],
            "threads": torch.get_num_threads()}


def sweep_seconds(model: nn.Module, data: ArrayDataset, attack: str = "pgd",
                  epsilons=(0.0, 0.025, 0.05, 0.1, 0.2), steps: int = 10, repeats: int = 5, *,
                  checks: bool = True, batch_size: int = 512) -> dict:
    """Median seconds of one :func:`robustness.evaluate` sweep (as a run record gets it)."""
    times, r = [], None
    for _ in range(repeats + 1):
        t = time.perf_counter()
        r = robustness.evaluate(model, data, attack, epsilons, steps=steps, batch_size=batch_size, checks=checks,
                                warn=False)
        times.append(time.perf_counter() - t)
    return {"attack": attack, "epsilons": r["epsilons"], "steps": steps, "samples": r["samples"], "checks": checks,
            "seconds": statistics.median(times[1:]), "all": times[1:], "accuracy": r["accuracy"],
            "threads": torch.get_num_threads()}


def _default_model():
    """The embedded default's model (digits, mlp), trained naturally for a few seconds."""
    from .data import load_dataset
    from .models import build_model
    from .train import natural_step, run_epochs

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    model = build_model("mlp", train.info, seed=0)
    run_epochs(model, train, natural_step(model), stage="teacher", epochs=10, lr=1e-3, batch_size=64, seed=0)
    return model.eval(), test


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m deadwood.throughput", description=__doc__.split("\n")[0])
    p.add_argument("--run", help="a run directory: time its pruned model on its test split "
                   "(default: a digits MLP trained here)")
    p.add_argument("--epsilon", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    ns = p.parse_args(argv)
    if ns.threads:
        torch.set_num_threads(ns.threads)
    if ns.run:
        from .data import load_dataset
        from .record import load_run

        loaded = load_run(ns.run)
        cfg = loaded.config
        model, data = loaded.model, load_dataset(cfg.dataset, "test", cfg.data_dir, cfg.seed)
    else:
        model, data = _default_model()
    sweep = sweep_seconds(model, data, steps=ns.steps, repeats=ns.repeats, batch_size=ns.batch_size)
    print(f"PGD-{ns.steps} at {len(sweep['epsilons'])} epsilons {sweep['epsilons']} over {sweep['samples']} "
          f"samples, checks on: {sweep['seconds']:.3f} s (median of {ns.repeats}, {sweep['threads']} threads)")
    bare = sweep_seconds(model, data, steps=ns.steps, repeats=ns.repeats, batch_size=ns.batch_size, checks=False)
    print(f"  the same, checks off: {bare['seconds']:.3f} s")
    o = pgd_overhead(model, data, ns.epsilon, ns.steps, ns.repeats, batch_size=ns.batch_size)
    print(f"PGD-{ns.steps} at epsilon {ns.epsilon} over {o['samples']} samples, batch {o['batch_size']}: "
          f"foolbox {o['foolbox_seconds']:.4f} s (accuracy {o['foolbox_accuracy']:.4f}), plain torch "
          f"{o['plain_seconds']:.4f} s (accuracy {o['plain_accuracy']:.4f}); ratio {o['ratio']:.2f}x "
          f"(median of {ns.repeats})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
