"""Condense finished benchmark grids into the small JSON that notebook 10 ("A fair fight") reads.

    python benchmarks/fair_fight_summary.py OUT [OUT ...] --commit SHA [--to notebooks/10_fair_fight_grid.json]

Each OUT is a ``deadwood bench --out`` folder. What is kept per grid: its setting (data, model, ε,
budget protocol, seeds, attacks and their samples), the command, the machine and its load when the
grid started, whether it finished, the mean ± sd over seeds of clean, PGD and AutoAttack robust
accuracy per (method, sparsity) with the cost against magnitude, and the teachers. Nothing is
recomputed: every number is read from ``bench.json`` (and so from the runs the grid produced).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

KEEP = ("clean_accuracy", "robust_accuracy", "autoattack_accuracy", "autoattack_pgd_accuracy", "time_s")


def condense(result: dict) -> dict:
    """The part of one ``bench.json`` that the notebook shows."""
    from deadwood.bench.report import summarize

    rows = result["rows"]
    summary = [{"method": e["method"], "sparsity": e["sparsity"], "seeds": e["seeds"],
                **{k: e[k] for k in KEEP if k in e}, "cost_vs_magnitude": e["cost_vs_magnitude"]}
               for e in summarize(rows)]
    epochs = {}
    for r in rows:
        epochs.setdefault(r["method"], r["train_epochs"])
    return {"grid": result["grid"], "complete": result["complete"], "command": result.get("command"),
            "evaluation": {k: result["evaluation"].get(k) for k in ("steps", "samples", "attack_samples")},
            "environment": result["environment"], "train_epochs": epochs, "summary": summary,
            "teachers": result["teachers"], "failures": result.get("failures", [])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outs", nargs="+", help="benchmark output folders (each holds bench.json)")
    p.add_argument("--commit", required=True, help="the engine commit the grids ran from")
    p.add_argument("--to", default=str(Path(__file__).resolve().parents[1] / "notebooks" / "10_fair_fight_grid.json"))
    args = p.parse_args(argv)
    grids = []
    for out in args.outs:
        path = Path(out) / "bench.json"
        if not path.is_file():
            p.error(f"{path} does not exist: is {out} a finished `deadwood bench --out` folder?")
        grids.append(condense(json.loads(path.read_text())))
    data = json.dumps({"commit": args.commit, "grids": grids}, indent=1, sort_keys=True) + "\n"
    target = Path(args.to)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.replace(tmp, target)  # atomic: a reader sees the old file or the new one
    print(f"wrote {target} ({len(data):,} bytes, {len(grids)} grids)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
