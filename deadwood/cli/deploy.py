"""``deadwood deploy``: what the cut buys, measured (see :mod:`deadwood.deploy`).

    deadwood deploy --run DIR [--repeats 30] [--warmup 5] [--batch-sizes 1 256] [--threads 1]
        [--no-sweep] [--force]

Prints latency at each batch size and the speed-up against dense for every execution form, the
multiply-accumulates (a count), whether each gives the dense predictions, the bytes of each export
format and the crossover per layer shape; writes the section into the run's ``record.json``. A
run already measured is shown from its record unless ``--force``.
"""
from __future__ import annotations

from ..deploy.measure import BATCH_SIZES, SWEEP, deployment, summary_lines
from ..device import deadwood_threads
from ..errors import ConfigError
from .options import check_threads


def add_deploy_command(sub) -> None:
    p = sub.add_parser("deploy", help="latency, size and predictions of a finished run's network, dense against "
                                      "sparse (CSR), BCR-compacted and 2:4 execution")
    p.add_argument("--run", required=True, help="a finished run directory")
    p.add_argument("--repeats", type=int, default=30, help="timed calls per form and batch size, median "
                                                           "reported (default: 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed rounds first (default: 5)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES),
                   help=f"(default: {' '.join(map(str, BATCH_SIZES))})")
    p.add_argument("--threads", type=int, help="CPU threads (default: $DEADWOOD_THREADS, else 1, as runs use)")
    p.add_argument("--no-sweep", action="store_true", help="skip the crossover sweep over sparsities")
    p.add_argument("--force", action="store_true", help="measure again even when the record holds a measurement")
    p.set_defaults(func=cmd_deploy)


def cmd_deploy(ns) -> int:
    check_threads(ns.threads)
    for name in ("repeats", "warmup"):
        if getattr(ns, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(ns, name)}")
    if any(b < 1 for b in ns.batch_sizes):
        raise ConfigError(f"every batch size must be >= 1, got {ns.batch_sizes}")
    with deadwood_threads(ns.threads):
        d = deployment(ns.run, force=ns.force, repeats=ns.repeats, warmup=ns.warmup,
                       batch_sizes=tuple(ns.batch_sizes), sweep=() if ns.no_sweep else SWEEP)
    print("\n".join(summary_lines(d)))
    print(f"written   deployment section of {ns.run}/record.json")
    return 0
