"""``deadwood throughput``: what the robustness evaluation costs, foolbox against plain torch.

    deadwood throughput [--run DIR] [--epsilon 0.1] [--steps 10] [--repeats 7] [--threads N]

The per-step throughput table of a benchmark is ``deadwood bench``'s (see
:mod:`deadwood.bench.throughput`); this command times the evaluation of one model.
"""
from __future__ import annotations

import torch

from ..bench.throughput import pgd_overhead, sweep_seconds
from .options import check_threads


def add_throughput_command(sub) -> None:
    p = sub.add_parser("throughput", help="time the PGD evaluation (foolbox vs plain torch) of a run's model")
    p.add_argument("--run", help="a run directory: time its pruned model on its test split "
                   "(default: a digits MLP trained here)")
    p.add_argument("--epsilon", type=float, default=0.1, help="(default: 0.1)")
    p.add_argument("--steps", type=int, default=10, help="(default: 10)")
    p.add_argument("--repeats", type=int, default=7, help="(default: 7)")
    p.add_argument("--batch-size", type=int, default=512, help="(default: 512)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    p.set_defaults(func=cmd_throughput)


def _default_model():
    """The embedded default's model (digits, mlp), trained naturally for a few seconds."""
    from ..data.datasets import load_dataset
    from ..models.registry import build_model
    from ..train import natural_step, run_epochs

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    model = build_model("mlp", train.info, seed=0)
    run_epochs(model, train, natural_step(model), stage="teacher", epochs=10, lr=1e-3, batch_size=64, seed=0)
    return model.eval(), test


def cmd_throughput(ns) -> int:
    check_threads(ns.threads)
    if ns.threads:
        torch.set_num_threads(ns.threads)
    if ns.run:
        from ..data.datasets import load_split
        from ..storage.record import load_run

        loaded = load_run(ns.run)
        cfg = loaded.config
        model, data = loaded.model, load_split(cfg, "test")
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
