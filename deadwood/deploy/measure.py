"""What the cut buys: latency, size and arithmetic of a finished run's network, measured.

:func:`measure` runs the same trained weights in each execution form of
:mod:`deadwood.deploy.sparse_forms`, checks each gives the dense model's predictions on the whole test
set, and times each at every batch size: the median over ``repeats`` timed calls after
``warmup`` untimed ones, the forms taking turns (so a change in the machine's load touches
them alike), in one process, with the thread count the runs use (``$DEADWOOD_THREADS``,
default 1) stated. A speed-up is always a ratio of two such medians against the dense form;
multiply-accumulates are a count of arithmetic beside them, never a speed. Bytes are those of
each export format (:mod:`deadwood.deploy.export`) as written.

:func:`crossover` sweeps, for every distinct layer of the model (its shape and, for a
convolution, its input size), random weights at a range of sparsities through the dense and the
CSR layer, and gives the sparsity where CSR starts to win on this machine.

:func:`deployment` caches the result in the run's ``record.json`` (``record.deployment``).

    deadwood deploy --run DIR [--repeats 30] [--batch-sizes 1 256] [--no-sweep] [--force]
"""
from __future__ import annotations

import copy
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from . import sparse_forms as sf
from ..device import cpu_threads, device_name

SWEEP = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
BATCH_SIZES = (1, 256)
FORMAT = 1
SIZE_LABELS = {"state_dict": "model.pt (state_dict, zeros stored)", "state_dict gzip": "model.pt gzipped",
               "prune": "torch.nn.utils.prune form (weight_orig + weight_mask)",
               "sparse": "sparse CSR export (int32 indices)"}
MIN_BLOCK_S = 2e-3  # a timed sample runs the call enough times to last this long (timer resolution)


def _calls_per_sample(fn) -> int:
    t = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t, 1e-7)
    return max(1, int(MIN_BLOCK_S / once))


def time_calls(fns: dict, *, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each function: ``repeats`` samples after ``warmup`` untimed rounds,
    round-robin over the functions; a sample times enough back-to-back calls to last
    :data:`MIN_BLOCK_S` and divides."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    inner = {k: _calls_per_sample(fn) for k, fn in fns.items()}
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            for _ in range(inner[k]):
                fn()
            out[k].append((time.perf_counter() - t) / inner[k])
    return out


def _batch(x: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` test inputs (repeated when the test set is smaller)."""
    reps = -(-n // len(x))
    return x.repeat(reps, *([1] * (x.dim() - 1)))[:n].contiguous()


def _logits(model: nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def _has_convs(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def build_forms(model: nn.Module, granularity: str, block: tuple[int, int]) -> tuple[dict, dict]:
    """The CPU forms of ``model`` (name -> module) and a note for each form that is not built."""
    forms, notes = {"dense": model}, {}
    forms["sparse"], _ = sf.sparse_form(model, convs=True)
    if _has_convs(model):
        forms["sparse-linear"], _ = sf.sparse_form(model, convs=False)
    else:
        notes["sparse-linear"] = "the same as 'sparse' here: the model has no convolutions"
    if granularity == "bcr":
        forms["bcr"], _ = sf.bcr_form(model, block)
    else:
        notes["bcr"] = (f"not built: the run was cut '{granularity}', not 'bcr' (its nonzeros are not whole "
                        "rows and columns of blocks)")
    notes["semi-2:4"] = sf.semi_structured_unavailable() or ""
    return forms, notes


def _semi_structured(model: nn.Module, x_test: torch.Tensor, batches: dict, repeats: int, warmup: int) -> dict:
    """The 2:4 form against float16 dense on the same GPU (called only where it is available)."""
    semi, converted, already = sf.semi_structured_form(model)
    dense16 = copy.deepcopy(model).half().cuda().eval()
    ref, got = _logits(dense16, x_test.half().cuda()), _logits(semi, x_test.half().cuda())
    lat = {}
    for b, x in batches.items():
        xb = x.half().cuda()

        def run(m, xb=xb):
            with torch.inference_mode():
                m(xb)
            torch.cuda.synchronize()

        t = time_calls({"dense16": lambda: run(dense16), "semi": lambda: run(semi)}, repeats=repeats, warmup=warmup)
        lat[str(b)] = {"dense_fp16": statistics.median(t["dense16"]), "semi": statistics.median(t["semi"])}
    return {"converted": converted, "already_2_4": already, "agreement_vs_fp16": sf.agreement(ref, got),
            "agreement_vs_dense_fp32": sf.agreement(_logits(model, x_test), got),
            "latency_s": {b: v["semi"] for b, v in lat.items()},
            "speedup": {b: v["dense_fp16"] / v["semi"] for b, v in lat.items()},
            "dense_fp16_latency_s": {b: v["dense_fp16"] for b, v in lat.items()},
            "device_name": device_name(torch.device("cuda"))}


def measure(loaded, *, batch_sizes=BATCH_SIZES, repeats: int = 30, warmup: int = 5, sweep=SWEEP,
            sweep_repeats: int = 15, sizes: bool = True) -> dict:
    """The deployment section of a finished run (see the module docstring); ``sweep=()`` skips the
    crossover sweep, ``sizes=False`` the export sizes."""
    from ..data.datasets import load_split
    from .export import sizes as export_sizes

    cfg = loaded.config
    test = load_split(cfg, "test")
    model = loaded.model.cpu().eval()
    block = (cfg.cut.block_rows, cfg.cut.block_cols)
    with cpu_threads(torch.device("cpu")):
        threads = torch.get_num_threads()
        forms, notes = build_forms(model, cfg.cut.granularity, block)
        ref = _logits(model, test.x)
        checks = {k: sf.agreement(ref, _logits(m, test.x)) for k, m in forms.items()}
        inputs = {b: _batch(test.x, b) for b in batch_sizes}
        latency: dict[str, dict[str, float]] = {k: {} for k in forms}
        spread: dict[str, dict[str, list[float]]] = {k: {} for k in forms}
        for b, x in inputs.items():
            def call(m, x=x):
                with torch.inference_mode():
                    m(x)

            times = time_calls({k: (lambda m=m: call(m)) for k, m in forms.items()}, repeats=repeats, warmup=warmup)
            for k, v in times.items():
                latency[k][str(b)] = statistics.median(v)
                spread[k][str(b)] = [min(v), max(v)]
        counts = sf.macs(model, test.x, forms.get("bcr"))
        cross = crossover(model, test.x, sweep, batch_sizes=batch_sizes, repeats=sweep_repeats,
                          warmup=warmup) if sweep else None
    rows = []
    for k in sf.FORMS:
        row = {"form": k, "label": sf.LABELS[k], "available": k in forms, "note": notes.get(k, "")}
        if k in forms:
            row.update(latency_s=latency[k], range_s=spread[k], agreement=checks[k],
                       speedup={b: latency["dense"][b] / v for b, v in latency[k].items()},
                       macs={"dense": counts["dense"], "bcr": counts.get("bcr"),
                             "sparse-linear": counts["nonzero_linear"]}.get(k, counts["nonzero"]))
        rows.append(row)
    semi = None
    if not notes["semi-2:4"]:
        semi = _semi_structured(model, test.x, inputs, repeats, warmup)
        rows[-1].update(available=True, latency_s=semi["latency_s"], speedup=semi["speedup"],
                        agreement=semi["agreement_vs_fp16"], macs=None,
                        note=f"speed-up against float16 dense on {semi['device_name']}; "
                             f"{semi['already_2_4']:.1%} of groups of four were 2:4 already")
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on Linux
        load = None
    return {"format": FORMAT, "threads": threads, "device": "cpu", "device_name": device_name(torch.device("cpu")),
            "torch": torch.__version__, "platform": platform.platform(), "load_average": load,
            "repeats": repeats, "warmup": warmup, "batch_sizes": list(batch_sizes), "test_samples": len(test),
            "global_sparsity": loaded.record.global_sparsity, "granularity": cfg.cut.granularity,
            "block": list(block), "forms": rows, "macs_note": "multiply-accumulates per sample: a count, not a speed",
            "tolerance": {"atol": sf.TOLERANCE[0], "rtol": sf.TOLERANCE[1]},
            "sizes": export_sizes(loaded) if sizes else None, "crossover": cross, "semi_structured": semi}


# --------------------------------------------------------------------------- crossover

def layer_shapes(model: nn.Module, x: torch.Tensor) -> list[dict]:
    """The distinct prunable layers of ``model``: kind, shape, a convolution's input size, layer names."""
    seen: dict[tuple, dict] = {}

    def record(name, module, inp, out):
        if isinstance(module, nn.Linear):
            key = ("linear", module.out_features, module.in_features)
            entry = {"kind": "linear", "out": module.out_features, "in": module.in_features}
        else:
            key = ("conv", module.out_channels, module.in_channels, *module.kernel_size, *module.stride,
                   *module.padding, *inp[0].shape[-2:])
            entry = {"kind": "conv", "out": module.out_channels, "in": module.in_channels,
                     "kernel": list(module.kernel_size), "stride": list(module.stride),
                     "padding": list(module.padding), "input_hw": list(inp[0].shape[-2:])}
        seen.setdefault(key, {**entry, "layers": []})["layers"].append(name)

    sf.forward_once(model, x, lambda m: isinstance(m, nn.Linear) or sf._plain_conv(m), record)
    return list(seen.values())


def shape_label(s: dict) -> str:
    if s["kind"] == "linear":
        return f"Linear {s['in']}→{s['out']}"
    return f"Conv {s['in']}→{s['out']} {s['kernel'][0]}x{s['kernel'][1]} on {s['input_hw'][0]}x{s['input_hw'][1]}"


def _random_layer(s: dict, sparsity: float, gen: torch.Generator) -> nn.Module:
    if s["kind"] == "linear":
        layer = nn.Linear(s["in"], s["out"])
    else:
        layer = nn.Conv2d(s["in"], s["out"], tuple(s["kernel"]), tuple(s["stride"]), tuple(s["padding"]))
    w = layer.weight.detach()
    cut = torch.randperm(w.numel(), generator=gen)[:round(sparsity * w.numel())]
    w.view(-1)[cut] = 0
    return layer.eval()


def _first_win(sparsities, speedups) -> float | None:
    """The sparsity from which CSR stays faster (speed-up >= 1 there and at every higher sparsity),
    interpolated linearly between the last grid point where it lost and the first where it won;
    None when it never wins at the top of the sweep."""
    pairs = list(zip(sparsities, speedups))
    if not pairs or pairs[-1][1] < 1:
        return None
    i = len(pairs) - 1
    while i > 0 and pairs[i - 1][1] >= 1:
        i -= 1
    if i == 0:
        return float(pairs[0][0])
    (s0, v0), (s1, v1) = pairs[i - 1], pairs[i]
    return float(s0 + (1 - v0) / (v1 - v0) * (s1 - s0))


def crossover(model: nn.Module, x: torch.Tensor, sparsities=SWEEP, *, batch_sizes=BATCH_SIZES, repeats: int = 15,
              warmup: int = 3, seed: int = 0, max_conv_columns: int = 65536) -> dict:
    """Per distinct layer of ``model``, dense against CSR at each of ``sparsities`` on random weights
    (that sparsity, uniformly at random) and random inputs of each batch size. A convolution's batch is
    capped so that batch x output positions stays under ``max_conv_columns`` (the size used is stated)."""
    from ..pruning.masks import sparsity_of

    gen = torch.Generator().manual_seed(seed)
    layer_sparsity = sparsity_of(model)[0]
    shapes = []
    for s in layer_shapes(model, x):
        s = {**s, "label": shape_label(s), "sparsities": list(sparsities), "speedup": {}, "crossover": {},
             "batch": {}, "run_sparsity": {n: layer_sparsity.get(f"{n}.weight") for n in s["layers"]}}
        for b in batch_sizes:
            if s["kind"] == "conv":
                positions = s["input_hw"][0] * s["input_hw"][1]
                b_used = max(1, min(b, max_conv_columns // positions))
                xin = torch.rand((b_used, s["in"], *s["input_hw"]), generator=gen)
            else:
                b_used = b
                xin = torch.rand((b, s["in"]), generator=gen)
            ups = []
            for sp in sparsities:
                dense = _random_layer(s, sp, gen)
                sparse = sf.SparseLinear(dense) if s["kind"] == "linear" else sf.SparseConv2d(dense)

                def call(m, xin=xin):
                    with torch.inference_mode():
                        m(xin)

                t = time_calls({"d": lambda: call(dense), "s": lambda: call(sparse)}, repeats=repeats, warmup=warmup)
                ups.append(statistics.median(t["d"]) / statistics.median(t["s"]))
            s["speedup"][str(b)], s["batch"][str(b)] = ups, b_used
            s["crossover"][str(b)] = _first_win(sparsities, ups)
        shapes.append(s)
    return {"batch_sizes": list(batch_sizes), "repeats": repeats, "shapes": shapes,
            "note": "speed-up = dense seconds / CSR seconds per call, random weights at each sparsity"}


# --------------------------------------------------------------------------- cached in the record

def deployment(run_dir, *, force: bool = False, **kwargs) -> dict:
    """The run's deployment section: read from its record when there, else measured (:func:`measure`)
    and written into ``record.json`` atomically."""
    from ..storage.record import load_run, update_record

    loaded = load_run(run_dir)
    if loaded.record.deployment and not force:
        return loaded.record.deployment
    section = measure(loaded, **kwargs)
    loaded.record.deployment = section
    update_record(Path(run_dir), loaded.record)
    return section


def summary_lines(d: dict) -> list[str]:
    """The deployment section as a markdown table (latency, speed-up, MACs, agreement) and the sizes."""
    bs = [str(b) for b in d["batch_sizes"]]
    head = (f"CPU {d['device_name']}, {d['threads']} torch thread(s), load average {d['load_average']}; "
            f"median of {d['repeats']} timed calls after {d['warmup']} warm-up rounds, forms interleaved; "
            f"global sparsity {d['global_sparsity']:.4f}; predictions checked on {d['test_samples']} test samples.")
    lines = [head, "", "| form | " + " | ".join(f"batch {b} (ms)" for b in bs) + " | "
             + " | ".join(f"speed-up b{b}" for b in bs) + " | MACs/sample (count) | same predictions |",
             "|---|" + "---:|" * (2 * len(bs) + 1) + "---|"]
    for r in d["forms"]:
        if not r["available"]:
            lines.append(f"| {r['label']} | " + " | ".join("n/a" for _ in range(2 * len(bs) + 1))
                         + f" | {r['note']} |")
            continue
        a = r["agreement"]
        macs = "n/a" if r["macs"] is None else f"{r['macs']:,}"
        lines.append(f"| {r['label']} | " + " | ".join(f"{r['latency_s'][b] * 1e3:.4f}" for b in bs) + " | "
                     + " | ".join(f"{r['speedup'][b]:.2f}x" for b in bs) + f" | {macs} | "
                     + ("yes" if a["same"] else "NO") + f" (max abs Δlogit {a['max_abs_diff']:.1e}, "
                     f"{a['mismatches']} differing) |")
    if d.get("sizes"):
        lines += ["", "| file | bytes | model.pt / file |", "|---|---:|---:|"]
        base = d["sizes"]["state_dict"]
        for k, v in d["sizes"].items():
            lines.append(f"| {SIZE_LABELS.get(k, k)} | {v:,} | {base / v:.2f}x |")
    c = d.get("crossover")
    if c:
        lines += ["", "Crossover (sparsity from which CSR beats dense on this machine, random weights):"]
        for s in c["shapes"]:
            at = ", ".join(f"batch {s['batch'][b]}: " + ("never in the sweep" if s["crossover"][b] is None
                                                         else f"{s['crossover'][b]:.3f}") for b in s["crossover"])
            lines.append(f"- {s['label']}: {at}")
    return lines
