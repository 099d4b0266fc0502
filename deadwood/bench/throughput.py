"""Throughput: images per second for each kind of step, and what foolbox costs over plain torch.

``step_throughput`` measures, on one device and in one process, images/s of a plain training step,
an adversarial (FGSM) training step, a Stage-3 fine-tune step (distillation + FGSM), a Deadwooding
dual step and a foolbox PGD evaluation, so the overheads are ratios of numbers taken side by side.
``synthetic_32x32`` is a stand-in for CIFAR-10 (random inputs and labels) for timing the 32x32
models where the real data is absent; it has no accuracy to report and is labelled as such.

``pgd_overhead`` times the project's foolbox PGD (:func:`deadwood.robustness.evaluation.evaluate`, one
epsilon, checks off) against a plain PyTorch PGD loop (:func:`deadwood.robustness.training.pgd`, the same
algorithm: random start, ``steps`` signed steps of ``2.5ε/steps``) on the same model, samples,
batch size and steps, each followed by the forward passes that score it. ``sweep_seconds`` times
a whole evaluation as the run record gets it. These are benchmarks, not tests: timings on a
shared machine are noisy, so both report the median of several repeats, interleaved.

    deadwood throughput [--run DIR] [--epsilon 0.1] [--steps 10] [--repeats 7] [--threads N]
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from .. import robustness
from ..device import device_name
from ..robustness.training import pgd
from ..data.datasets import ArrayDataset, batches


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


# --------------------------------------------------------------------------- step throughput

SYNTHETIC_NAME = "synthetic-32x32 (random data, timing only)"


def synthetic_32x32(n: int, seed: int = 0, num_classes: int = 10) -> ArrayDataset:
    """A CIFAR-10-shaped stand-in for timing: ``n`` uniform random 3x32x32 inputs in [0, 1] with
    random labels. It has CIFAR-10's normalisation constants so models build the same way; the
    accuracies any model reaches on it mean nothing, and its name says so."""
    from ..data.datasets import DatasetInfo, dataset_info

    cifar = dataset_info("cifar10")
    info = DatasetInfo(SYNTHETIC_NAME, (3, 32, 32), num_classes, cifar.mean, cifar.std, embedded=True,
                       classes=tuple(str(i) for i in range(num_classes)))
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 3, 32, 32), generator=gen)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    return ArrayDataset(x, y, info, "train")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stepper(step, params, x, y, *, steps: int, amp: bool):
    """A function timing ``steps`` optimizer steps on the batch ``(x, y)``: each step is what
    :func:`deadwood.train.run_epochs` does per mini-batch (loss under autocast, backward, Adam)."""
    from ..train import autocast

    opt = torch.optim.Adam(params, lr=1e-6)  # a tiny step: the model barely moves while timed

    def block(n: int = steps) -> float:
        _sync(x.device)
        t = time.perf_counter()
        for _ in range(n):
            with autocast(x.device, amp):
                loss, _ = step(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(x.device)
        return time.perf_counter() - t

    return block


MEMORY_METHODS = {
    "cpu": "torch.profiler (profile_memory): every allocation and free of torch's CPU allocator during one step, "
           "in order; the peak of their running sum",
    "cuda": "torch.cuda.max_memory_allocated during one step, less what was allocated before it",
}


def _cpu_peak_bytes(run) -> int:
    """Peak bytes that torch's CPU allocator holds during ``run()`` above what it held before.

    The profiler records each allocation and free with its size and time; the running sum of
    those, in time order, is what the step holds at each moment. Peak RSS would also count
    Python objects, the allocator's retained pages and whatever ran before in the process."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == DeviceType.CPU]
    held = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        held += e.nbytes()
        peak = max(peak, held)
    return peak


def step_peak_memory(block, device: torch.device) -> int:
    """Peak bytes one step of ``block`` (a :func:`_stepper`, already warmed up, so the optimizer's
    state exists) allocates above what was live when it started: its activations, gradients,
    attack and constraint tensors. Method: :data:`MEMORY_METHODS` for the device type."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        block(1)
        return torch.cuda.max_memory_allocated(device) - base
    return _cpu_peak_bytes(lambda: block(1))


def step_throughput(model_name: str, train: ArrayDataset, test: ArrayDataset, *, epsilon: float = 0.1,
                    batch_size: int = 64, device="cpu", amp: bool = False, steps: int = 20, repeats: int = 5,
                    eval_samples: int = 512, pgd_steps: int = 10, config=None, seed: int = 0) -> dict:
    """Images per second, on ``device``, of each kind of step the benchmark's runs take.

    ``plain`` (cross-entropy), ``adversarial`` (FGSM with random start, as the teacher trains),
    ``finetune`` (Stage 3: FGSM + distillation from a teacher), ``dual`` (one Deadwooding primal
    step: teacher forward, FGSM, the Lagrangian of every constraint) are timed on one fixed batch
    of ``batch_size`` training images, ``steps`` steps per repeat, the kinds taking turns,
    median of ``repeats``;
    ``pgd_eval`` is foolbox PGD (``pgd_steps`` steps, one epsilon) over ``eval_samples`` test
    images, from :func:`pgd_overhead`, which also times plain-torch PGD on the same work.
    ``eval_samples`` 0 leaves the evaluation out. ``ratios`` are seconds per image relative to the
    plain step, ``dual_vs_finetune`` a dual step's seconds over a fine-tune step's;
    ``peak_memory_bytes`` is one step of each kind, measured after the timing
    (:func:`step_peak_memory`). The weights are a fresh
    initialisation (a step costs the same whatever the weights); ``config`` (a RunConfig, default
    the embedded one with this epsilon) supplies the Deadwooding and fine-tuning settings.
    """
    from ..config import RunConfig, with_updates
    from ..methods import PruneContext
    from ..methods.deadwooding.method import primal_dual
    from ..models.registry import build_model
    from ..train import adversarial_step, distill_step, natural_step

    device = torch.device(device)
    if config is None:
        config = RunConfig(epsilon=epsilon)
    config = with_updates(config, epsilon=epsilon, batch_size=batch_size, seed=seed)
    batch = train.subset(batch_size, seed).to(device)
    x, y = batch.x, batch.y
    gen = torch.Generator().manual_seed(seed)

    def fresh():
        return build_model(model_name, train.info, seed=seed).to(device).train()

    teacher = fresh().eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    blocks = {}
    m = fresh()
    blocks["plain"] = _stepper(natural_step(m), m.parameters(), x, y, steps=steps, amp=amp)
    m = fresh()
    blocks["adversarial"] = _stepper(adversarial_step(m, "fgsm", epsilon, 1, gen), m.parameters(), x, y,
                                     steps=steps, amp=amp)
    m = fresh()
    fc = config.finetune
    blocks["finetune"] = _stepper(distill_step(m, teacher, attack=fc.attack, eps=epsilon, pgd_steps=fc.pgd_steps,
                                               alpha_kd=fc.alpha_kd, tau=fc.tau, generator=gen),
                                  m.parameters(), x, y, steps=steps, amp=amp)
    # The solve's own step, built by the solve's own factory at the pace of the real training set.
    # The problem estimates the teacher's adversarial loss once over ``ctx.train``: give it the
    # timed batch only, so building it stays cheap on large data sets.
    ctx = PruneContext(teacher, config, batch, batch, device)
    m = ctx.student()
    primal = primal_dual(m, ctx, len(train))
    blocks["dual"] = _stepper(primal.lagrangian, m.parameters(), x, y, steps=steps, amp=amp)
    # Round-robin, so a change in the machine's load touches every kind alike; round 0 warms up.
    seconds: dict[str, list[float]] = {k: [] for k in blocks}
    try:
        for r in range(repeats + 1):
            for k, block in blocks.items():
                t = block()
                if r:
                    seconds[k].append(t)
        # After the timing, so every optimizer's state exists and no step pays for its first one.
        memory = {k: step_peak_memory(block, device) for k, block in blocks.items()}
    finally:
        primal.close()
    rates = {k: batch_size * steps / statistics.median(v) for k, v in seconds.items()}
    overhead = None
    if eval_samples:
        evalset = test.subset(eval_samples, seed).to(device)
        overhead = pgd_overhead(fresh().eval(), evalset, epsilon, pgd_steps, repeats, batch_size=512, seed=seed)
        rates["pgd_eval"] = overhead["samples"] / overhead["foolbox_seconds"]
    return {
        "device": str(device), "device_name": device_name(device), "threads": torch.get_num_threads(),
        "amp": bool(amp and device.type == "cuda"), "model": model_name, "dataset": train.info.name,
        "batch_size": batch_size, "steps": steps, "repeats": repeats, "epsilon": epsilon,
        "pgd_steps": pgd_steps, "eval_samples": overhead["samples"] if overhead else 0,
        "images_per_second": rates,
        "ratios": {k: rates["plain"] / v for k, v in rates.items()},
        "dual_vs_finetune": rates["finetune"] / rates["dual"],
        "seconds": seconds,
        "peak_memory_bytes": memory, "memory_method": MEMORY_METHODS[device.type],
        "pgd_overhead": overhead and {k: overhead[k] for k in ("foolbox_seconds", "plain_seconds", "ratio",
                                                               "samples", "batch_size", "steps")},
    }


STEP_LABELS = {
    "plain": "plain training step (cross-entropy)",
    "adversarial": "adversarial training step (FGSM, random start)",
    "finetune": "fine-tune step (FGSM + distillation)",
    "dual": "Deadwooding dual step (teacher, FGSM, every constraint)",
    "pgd_eval": "PGD evaluation (foolbox, one epsilon)",
    "autoattack_eval": "AutoAttack evaluation (torchattacks, standard, one epsilon)",
}


def throughput_lines(t: dict) -> list[str]:
    """``step_throughput``'s result as a markdown table and a line on foolbox's cost."""
    o = t["pgd_overhead"]
    memory = t.get("peak_memory_bytes") or {}
    head = (f"Device {t['device']} ({t['device_name']}), {t['threads']} torch thread(s), "
            f"{'bfloat16 autocast, ' if t['amp'] else ''}model {t['model']} on {t['dataset']}; "
            f"training steps on batches of {t['batch_size']} (median of {t['repeats']} x {t['steps']} steps)"
            + (f", PGD-{t['pgd_steps']} at epsilon {t['epsilon']} over {t['eval_samples']} test images." if o else "."))
    lines = [head, "", "| step | images/s | seconds per image vs plain step | peak memory of one step (MiB) |",
             "|---|---:|---:|---:|"]
    for k, label in STEP_LABELS.items():
        if k in t["images_per_second"]:
            rate = t["images_per_second"][k]
            mib = f"{memory[k] / 2 ** 20:,.0f}" if k in memory else ""
            lines.append(f"| {label} | {rate:,.0f} | {t['ratios'][k]:.2f}x | {mib} |" if rate >= 10 else
                         f"| {label} | {rate:,.2f} | {t['ratios'][k]:.{0 if t['ratios'][k] >= 10 else 2}f}x | {mib} |")
    if "dual_vs_finetune" in t:
        m = (f", peak memory {memory['dual'] / memory['finetune']:.2f}x" if memory.get("finetune") else "")
        lines += ["", f"Dual step vs fine-tune step: {t['dual_vs_finetune']:.2f}x the seconds{m}."]
    if memory:
        lines += ["", f"Peak memory: what one step allocates above what was live before it; {t['memory_method']}."]
    if o:
        lines += ["", f"foolbox PGD vs plain-torch PGD on the same images and steps: {o['foolbox_seconds']:.3f} s vs "
                      f"{o['plain_seconds']:.3f} s, ratio {o['ratio']:.2f}x."]
    a = t.get("autoattack_cost")
    if a:
        lines += ["", f"AutoAttack vs PGD-{a['pgd_steps']} per test image, on the same {a['samples']} images of a "
                      f"trained model ({a['model']}, epsilon {a['epsilon']:g}, median of {a['repeats']}): "
                      f"{1000 * a['autoattack_seconds_per_image']:.1f} ms vs {1000 * a['pgd_seconds_per_image']:.2f} ms, "
                      f"ratio {a['ratio']:.0f}x (robust accuracy {a['autoattack_accuracy']:.3f} vs "
                      f"{a['pgd_accuracy']:.3f}). AutoAttack's cost grows with the samples that survive each "
                      "component (Square's 5000 queries run on the survivors), so it is timed on a trained model."]
    return lines


def autoattack_cost(model: nn.Module, data: ArrayDataset, epsilon: float = 0.1, *, pgd_steps: int = 10,
                    repeats: int = 1, seed: int = 0, batch_size: int = 512) -> dict:
    """Seconds per image of AutoAttack (standard, one epsilon, checks off) and of foolbox PGD-``pgd_steps``
    on the same ``data`` and ``model``, median of ``repeats`` (after one PGD warm-up), interleaved."""
    was = model.training
    model.eval()
    aa_t, pgd_t, aa, pg = [], [], None, None
    try:
        robustness.evaluate(model, data, "pgd", [epsilon], steps=pgd_steps, seed=seed, checks=False, warn=False)
        for _ in range(repeats):
            t = time.perf_counter()
            pg = robustness.evaluate(model, data, "pgd", [epsilon], steps=pgd_steps, seed=seed, checks=False,
                                     warn=False, batch_size=batch_size)
            pgd_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            aa = robustness.evaluate(model, data, "autoattack", [epsilon], seed=seed, checks=False, warn=False,
                                     batch_size=batch_size)
            aa_t.append(time.perf_counter() - t)
    finally:
        model.train(was)
    n = len(data)
    a, p = statistics.median(aa_t) / n, statistics.median(pgd_t) / n
    return {"epsilon": epsilon, "samples": n, "repeats": repeats, "pgd_steps": pgd_steps,
            "autoattack_seconds_per_image": a, "pgd_seconds_per_image": p, "ratio": a / p,
            "autoattack_accuracy": aa["accuracy"][-1], "pgd_accuracy": pg["accuracy"][-1],
            "package": aa["package"], "threads": torch.get_num_threads()}


def add_autoattack_cost(t: dict, model: nn.Module, test: ArrayDataset, *, epsilon: float, samples: int,
                        seed: int = 0, repeats: int = 1, label: str = "dense teacher") -> dict:
    """``step_throughput``'s result ``t`` with AutoAttack's row (images/s, ratio to the plain step)
    and ``autoattack_cost``, timed on ``model`` (trained) over ``samples`` test images."""
    from ..device import cpu_threads

    data = test.subset(samples, seed)
    device = next(model.parameters()).device
    with cpu_threads(device):
        cost = autoattack_cost(model, data, epsilon, pgd_steps=t.get("pgd_steps", 10), repeats=repeats, seed=seed)
    cost["model"] = f"{t['model']} {label}"
    rate = 1.0 / cost["autoattack_seconds_per_image"]
    return {**t, "images_per_second": {**t["images_per_second"], "autoattack_eval": rate},
            "ratios": {**t["ratios"], "autoattack_eval": t["images_per_second"]["plain"] / rate},
            "autoattack_cost": cost}
