"""The benchmark's deployment section: what each method's cut buys at each sparsity, measured.

For the first seed of every (method, sparsity) point, :func:`deadwood.deploy.measure.deployment` on the
benchmark's copy of the run (so the measurement is kept in that copy's ``record.json`` and a
resumed benchmark reads it back); the crossover sweep once, on the first pruned run (it depends
on the layer shapes only, which every point shares).
"""
from __future__ import annotations

from pathlib import Path


def measure_deployment(rows: list[dict], out: Path, *, repeats: int = 30, warmup: int = 5, sweep=None,
                       sweep_repeats: int = 15) -> dict:
    """One entry per (method, sparsity) of ``rows`` (benchmark rows, ``run`` relative to ``out``) at its
    first seed, and the crossover sweep (default :data:`deadwood.deploy.measure.SWEEP`) of the first."""
    from ..deploy.measure import SWEEP, deployment

    sweep = SWEEP if sweep is None else tuple(sweep)

    first_seed = min((r["seed"] for r in rows), default=None)
    entries, crossover = [], None
    for r in rows:
        if r["seed"] != first_seed or not r["sparsity"]:
            continue
        d = deployment(Path(out) / r["run"], repeats=repeats, warmup=warmup, sweep=() if crossover else sweep,
                       sweep_repeats=sweep_repeats)
        crossover = crossover or d.get("crossover")
        entries.append({"method": r["method"], "sparsity": r["sparsity"], "seed": r["seed"], "run": r["run"],
                        "global_sparsity": d["global_sparsity"], "threads": d["threads"],
                        "load_average": d["load_average"], "batch_sizes": d["batch_sizes"], "repeats": d["repeats"],
                        "forms": {f["form"]: {k: f.get(k) for k in ("available", "latency_s", "speedup", "macs",
                                                                    "agreement", "note")} for f in d["forms"]},
                        "sizes": d["sizes"]})
    return {"entries": entries, "crossover": crossover}


def deployment_lines(section: dict) -> list[str]:
    """The section as a markdown table: latency of dense and CSR (and BCR where built) at each batch size,
    speed-ups against dense, the sparse file against ``model.pt``, and whether every form agreed."""
    entries = section.get("entries") or []
    if not entries:
        return ["no pruned runs to measure"]
    bs = [str(b) for b in entries[0]["batch_sizes"]]
    e0 = entries[0]
    lines = [f"Median of {e0['repeats']} timed calls per form after warm-up, {e0['threads']} torch thread(s), "
             f"load average {e0['load_average']} at the first measurement; speed-ups are ratios against dense in "
             "the same process. Seed of each point: the first.", "",
             "| method | sparsity | " + " | ".join(f"dense b{b} (ms) | CSR b{b} | BCR b{b}" for b in bs)
             + " | sparse file vs model.pt | same predictions |",
             "|---|---:|" + "---:|" * (3 * len(bs) + 1) + "---|"]
    for e in entries:
        f = e["forms"]
        cells = []
        for b in bs:
            cells.append(f"{f['dense']['latency_s'][b] * 1e3:.4f}")
            for k in ("sparse", "bcr"):
                cells.append(f"{f[k]['latency_s'][b] * 1e3:.4f} ({f[k]['speedup'][b]:.2f}x)" if f[k]["available"]
                             else "n/a")
        same = all(v["agreement"]["same"] for v in f.values() if v["available"])
        ratio = e["sizes"]["state_dict"] / e["sizes"]["sparse"] if e.get("sizes") else None
        lines.append(f"| {e['method']} | {e['sparsity']:g} | " + " | ".join(cells)
                     + f" | {'n/a' if ratio is None else f'{ratio:.1f}x smaller'} | {'yes' if same else 'NO'} |")
    c = section.get("crossover")
    if c:
        lines += ["", "Crossover (the sparsity from which CSR beats dense, random weights, per layer shape):"]
        for s in c["shapes"]:
            lines.append(f"- {s['label']}: " + ", ".join(
                f"batch {s['batch'][b]}: " + ("never in the sweep" if v is None else f"{v:.3f}")
                for b, v in s["crossover"].items()))
    return lines
