"""``deadwood bench``: every method on one grid, side by side (see :mod:`deadwood.bench`).

    deadwood bench --dataset digits --model mlp \\
        --methods deadwooding magnitude magnitude-layerwise random hydra \\
        --sparsities 0.9 0.95 0.98 0.99 --epsilon 0.1 --seeds 0 1 2 --out DIR

Every stage setting of ``run`` is a flag here too (``--finetune-epochs``, ``--deadwooding-*``,
...), applied to every grid point. ``--gpu`` is the 32x32 GPU mode: device cuda, model resnet20
(or vgg, or any ``torchvision:NAME``; ``--device cpu`` times it on the CPU), CIFAR-10 when
``--data-dir`` holds it, otherwise a synthetic stand-in that is timed and never scored. Interrupt it at any time: rerunning the same command resumes from the cached runs.
``--workers N`` (or ``--ray-address ADDR``) computes the grid's teachers, solves and runs as Ray tasks
(:mod:`deadwood.bench.executor`); the rows are the same.
"""
from __future__ import annotations

import shlex
import sys
import warnings
from pathlib import Path

from ..device import deadwood_threads
from ..errors import ConfigError
from ..progress import progress_bars
from .options import add_config_arguments, check_threads, config_from_args

DEFAULT_METHODS = ("deadwooding", "magnitude", "magnitude-layerwise", "random", "hydra", "gmp", "harp")
DEFAULT_SPARSITIES = (0.9, 0.95, 0.98, 0.99)
GPU_MODELS = ("resnet20", "vgg")
# RunConfig fields that stay single-valued flags of their own (the grid's axes are lists below).
_SHARED_TOP = ("batch_size", "min_keep", "amp", "budget", "download", "image_size", "teacher_checkpoint")


def add_bench_command(sub) -> None:
    from ..bench.attacks import BENCH_ATTACKS
    from ..methods import method_names

    b = sub.add_parser("bench", help="every method at every sparsity and seed on one teacher per seed: "
                                     "bench.json, bench.md, pareto.html")
    g = b.add_argument_group("grid")
    g.add_argument("--dataset", help="(default: digits; with --gpu: cifar10 when --data-dir holds it, "
                                     "else the synthetic 32x32 stand-in)")
    g.add_argument("--model", help=f"(default: mlp; with --gpu: resnet20; one of {', '.join(GPU_MODELS)} "
                                   "or torchvision:NAME)")
    g.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                   help=f"(default: {' '.join(DEFAULT_METHODS)}; any of: {', '.join(method_names())})")
    g.add_argument("--sparsities", nargs="+", type=float, default=list(DEFAULT_SPARSITIES),
                   help=f"(default: {' '.join(map(str, DEFAULT_SPARSITIES))})")
    g.add_argument("--epsilon", type=float, default=0.1, help="attack budget for training and the robust "
                   "accuracy column (default: 0.1)")
    g.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="(default: 0 1 2)")
    g.add_argument("--out", required=True, help="folder for bench.json, bench.md, pareto.html and runs/")
    g.add_argument("--data-dir", help="where torchvision-layout datasets lie (mnist, cifar10, ...)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="(default: auto; with --gpu: cuda)")
    g.add_argument("--cache-dir", help="cache folder (default: $DEADWOOD_CACHE or ~/.cache/deadwood)")
    g.add_argument("--threads", type=int, help="CPU threads for the runs and the throughput timing "
                   "(default: $DEADWOOD_THREADS, else 1); recorded in the output")
    g.add_argument("--workers", type=int, default=1, help="grid points computed at once: N > 1 starts a local "
                   "Ray instance with N workers of one torch thread each (--threads sets it); default 1: one "
                   "process, Ray not started")
    g.add_argument("--ray-address", help="join the Ray cluster at ADDR (host:port of `ray start --head`) instead; "
                   "its CPUs set how many points run at once")
    g.add_argument("--gpu", action="store_true", help="the 32x32 GPU mode (resnet20/vgg/torchvision:NAME on "
                   "CIFAR-10, or a synthetic stand-in for timing only; --device cpu times it on the CPU)")
    g.add_argument("--attack", nargs="+", default=list(BENCH_ATTACKS), choices=BENCH_ATTACKS,
                   help="robust-accuracy columns: pgd (the run record's own) and autoattack (the standard "
                        "version, on --autoattack-samples test images per run and teacher, with PGD-10 on the "
                        f"same images beside it) (default: {' '.join(BENCH_ATTACKS)})")
    g.add_argument("--autoattack-samples", type=int, default=200, dest="attack_samples", metavar="N",
                   help="test images AutoAttack runs on, per run and per seed's teacher (default: 200)")
    g.add_argument("--throughput", action="store_true", default=True, dest="throughput",
                   help="measure images/s per step kind (default)")
    g.add_argument("--no-throughput", action="store_false", dest="throughput", help="skip the throughput section")
    g.add_argument("--throughput-steps", type=int, default=20, help="steps per timed repeat (default: 20)")
    g.add_argument("--throughput-repeats", type=int, default=5, help="repeats, median reported (default: 5)")
    g.add_argument("--throughput-samples", type=int, default=512,
                   help="test images for the PGD timing; 0 leaves the PGD timing out (default: 512)")
    g.add_argument("--deploy", action="store_true", help="measure what each cut buys (latency dense vs CSR vs "
                   "BCR, file sizes, the crossover) for the first seed of each method and sparsity (default: off)")
    g.add_argument("--deploy-repeats", type=int, default=30, help="timed calls per form, median reported "
                   "(default: 30)")
    add_config_arguments(b, top_fields=_SHARED_TOP)
    b.set_defaults(func=cmd_bench)


def _gpu_setting(ns) -> tuple[str, str]:
    """(dataset, note) for --gpu: CIFAR-10 when the data folder holds it, else the stand-in."""
    from ..data.datasets import dataset_info

    if ns.dataset not in (None, "cifar10"):
        raise ConfigError(f"--gpu runs on 32x32 CIFAR-10 (or its synthetic stand-in), not '{ns.dataset}'")
    files = dataset_info("cifar10").files
    if ns.data_dir and all((Path(ns.data_dir).expanduser() / f).exists() for f in files):
        return "cifar10", ""
    if ns.dataset == "cifar10":  # asked for explicitly: say what is missing instead of substituting
        from ..data.datasets import load_dataset

        load_dataset("cifar10", "test", ns.data_dir)
    where = ns.data_dir or "no --data-dir given"
    return "synthetic", (f"CIFAR-10 not found ({where}): throughput on a synthetic 32x32 stand-in "
                         "(random inputs and labels), timing only, no accuracies")


def _check(ns) -> None:
    check_threads(ns.threads)
    if ns.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {ns.workers}")
    for name in ("throughput_steps", "throughput_repeats", "deploy_repeats"):
        if getattr(ns, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(ns, name)}")
    if ns.throughput_samples < 0:
        raise ConfigError(f"--throughput-samples must be >= 0, got {ns.throughput_samples}")


def _progress():
    """(on_point, on_event): an outer bar over grid points and a transient bar per stage under it."""
    from tqdm.auto import tqdm

    state: dict = {"cached": 0}

    def on_point(i, total, config, what):
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc="bench", unit="run", file=sys.stderr, dynamic_ncols=True,
                                position=0)
        bar = state["bar"]
        label = f"{config.method} {config.sparsity:g} seed {config.seed}"
        if what == "start":
            bar.set_postfix_str(label)
            return
        state["cached"] += what == "cached"
        bar.update(1)
        bar.set_postfix_str(f"{label} {what}; {state['cached']} from cache")
        if bar.n == bar.total:
            bar.close()

    return on_point, progress_bars(indent="  ", leave=False, position=1)


def cmd_bench(ns) -> int:
    _check(ns)
    with deadwood_threads(ns.threads):
        return _bench(ns)


def _bench(ns) -> int:
    from .. import bench
    from ..device import resolve_device
    from ..robustness import RobustnessWarning

    command = "deadwood " + " ".join(shlex.quote(a) for a in getattr(ns, "argv", None) or ["bench"])
    note = ""
    if ns.gpu:
        if ns.model not in (None, *GPU_MODELS) and not str(ns.model).startswith("torchvision:"):
            raise ConfigError(f"--gpu runs {' or '.join(GPU_MODELS)} or torchvision:NAME on 32x32 inputs, "
                              f"not '{ns.model}'")
        ns.model = ns.model or "resnet20"
        ns.device = ns.device or "cuda"
        ns.dataset, note = _gpu_setting(ns)
    synthetic = ns.dataset == "synthetic"
    ns.dataset, ns.model, ns.device = ns.dataset or "digits", ns.model or "mlp", ns.device or "auto"
    if synthetic:
        ns.dataset = "cifar10"  # for the stage settings only: the stand-in has CIFAR-10's shape, no file is read
    ns.method, ns.sparsity, ns.seed = ns.methods[0], ns.sparsities[0], ns.seeds[0]
    base = config_from_args(ns)
    tp_kwargs = dict(steps=ns.throughput_steps, repeats=ns.throughput_repeats, eval_samples=ns.throughput_samples)
    if synthetic:
        if not ns.throughput:
            raise ConfigError("the synthetic stand-in is for timing only: drop --no-throughput, or give "
                              "--data-dir a folder holding CIFAR-10")
        device = resolve_device(base.device)
        t = bench.synthetic_throughput(base.model, device, amp=base.amp, epsilon=base.epsilon,
                                       batch_size=base.batch_size, samples=max(base.batch_size, ns.throughput_samples),
                                       pgd_steps=base.evaluation.steps, config=base, **tp_kwargs)
        result = bench.timing_only(base.model, ns.out, t, epsilon=base.epsilon, command=command, note=note)
        _report(result, ns.out)
        return 0

    attacks = tuple(dict.fromkeys(["pgd", *ns.attack]))  # pgd is the records' own, always reported
    spec = bench.BenchSpec(base, tuple(ns.methods), tuple(ns.sparsities), tuple(ns.seeds), attacks,
                           ns.attack_samples)
    device = resolve_device(base.device)  # fail before any work when cuda is asked for and absent
    throughput = (lambda: bench.measure_throughput(base, device, **tp_kwargs)) if ns.throughput else False
    with warnings.catch_warnings():
        # Failed sanity checks are kept in each row and listed in bench.md instead.
        warnings.simplefilter("ignore", RobustnessWarning)
        deploy = {"repeats": ns.deploy_repeats} if ns.deploy else False
        if ns.workers == 1 and not ns.ray_address:
            on_point, on_event = _progress()
            result = bench.run_bench(spec, ns.out, cache_dir=ns.cache_dir, on_point=on_point, on_event=on_event,
                                     throughput=throughput, command=command, note=note, deploy=deploy)
        else:
            from ..bench.executor import RayExecutor

            with RayExecutor(ns.workers, address=ns.ray_address, threads=ns.threads or 1) as executor:
                result = bench.run_bench(spec, ns.out, cache_dir=ns.cache_dir, executor=executor,
                                         on_task=_task_bars(), throughput=throughput, command=command, note=note,
                                         deploy=deploy)
    _report(result, ns.out)
    for f in result.get("failures") or []:
        print(f"failed    {f['kind']} of {f['method']} at sparsity {f['sparsity']:g}, seed {f['seed']}: {f['error']}",
              file=sys.stderr)
    return 1 if result.get("failures") else 0


def _task_bars():
    """An ``on_progress`` for the executor: one bar per kind of task (teachers, solves, runs) with
    counts; a failed task is named on a line of its own."""
    from tqdm.auto import tqdm

    from ..bench.executor import KINDS

    bars: dict = {}

    def on_task(kind, done, total, task, what, error=None):
        if what == "start":
            bars[kind] = tqdm(total=total, desc=f"{kind}s", unit=kind, file=sys.stderr, dynamic_ncols=True,
                              position=KINDS.index(kind), leave=True)
            return
        bar = bars[kind]
        if what in ("failed", "skipped"):
            bar.write(f"failed    {task.label}: {error}", file=sys.stderr)
        if done > bar.n:
            bar.update(done - bar.n)
        if done == total:
            bar.close()

    return on_task


def _report(result: dict, out) -> None:
    out = Path(out)
    print((out / "bench.md").read_text(), end="")
    if result.get("figure_note"):
        print(f"note: {result['figure_note']}", file=sys.stderr)
    files = ["bench.json", "bench.md"] + (["pareto.html"] if (out / "pareto.html").is_file() else []) + \
        (["pareto.png"] if result.get("figure") == "pareto.png" else [])
    print(f"written   {', '.join(str(out / f) for f in files)}")
