"""Execute the companion notebooks top to bottom, each in a fresh kernel.

    python notebooks/execute.py                 # every notebook, outputs stored in place
    python notebooks/execute.py 03_global_cut   # one of them
    python notebooks/execute.py --check         # execute without writing (exit 1 on any error)

Stored outputs must come from the embedded default, so run it without
``DEADWOOD_NOTEBOOK_QUICK``. Each notebook gets its own empty cache folder unless
``--cache`` names one, so the printed seconds are what a first-time reader waits.
The test suite calls :func:`execute` the same way, in quick mode.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def notebooks() -> list[Path]:
    """The companion notebooks, in reading order."""
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(path: Path, *, env: dict | None = None, timeout: int = 600) -> tuple[nbformat.NotebookNode, dict]:
    """Run ``path`` in a fresh python3 kernel (working directory ``notebooks/``).

    Returns the executed notebook and its cost: ``wall`` seconds and ``cpu`` seconds
    of the kernel and everything it started (a measure that a busy machine does not
    inflate). Raises :class:`nbclient.exceptions.CellExecutionError` on the first
    failing cell.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(HERE)}})
    t0, c0 = time.perf_counter(), _children_cpu()
    client.execute(env={**os.environ, **(env or {})})
    return nb, {"wall": time.perf_counter() - t0, "cpu": _children_cpu() - c0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="notebook names (default: all)")
    p.add_argument("--check", action="store_true", help="execute only; leave the stored notebooks alone")
    p.add_argument("--cache", help="one DEADWOOD_CACHE for all (default: a new empty folder per notebook)")
    args = p.parse_args(argv)
    paths = notebooks()
    if args.names:
        wanted = {n.removesuffix(".ipynb") for n in args.names}
        paths = [q for q in paths if q.stem in wanted]
        missing = wanted - {q.stem for q in paths}
        if missing:
            print(f"error: no notebook named {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
    failed = 0
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="deadwood-nb-") as tmp:
            try:
                nb, cost = execute(path, env={"DEADWOOD_CACHE": args.cache or tmp})
            except CellExecutionError as e:
                failed += 1
                print(f"FAILED {path.name}: {str(e).strip().splitlines()[-1]}")
                continue
        if not args.check:
            nbformat.write(nb, path)
        size = path.stat().st_size / 1e6
        print(f"{path.name:42s} {cost['wall']:6.1f} s wall  {cost['cpu']:6.1f} s CPU  {size:5.2f} MB  "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
