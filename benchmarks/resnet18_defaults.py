"""A fresh resnet18 run at the defaults on a small image folder: where its time goes, for two checkouts side by side.

The app-at-scale question: how long a user waits for a torchvision network at the default settings, and how much of
it the sparsity profile takes (a profile of 46 attacked cuts once cost more than the solve). This makes a 3-class
image folder in torchvision's layout (``train/<class>/``, ``test/<class>/``, PNGs of a class-coloured square at a
random place under noise), then runs ``deadwood run --model torchvision:resnet18 --dataset folder --image-size 32``
with every other setting at its default, once per checkout, **at the same time** (each on a new empty cache), so
that both see the same load. It prints each run's wall time and its record's ``timings`` (the older layout folds
the profile into ``prune``), and the load average before and after. A benchmark, not a test.

    python benchmarks/resnet18_defaults.py --checkout /path/to/older/checkout --checkout .
    python benchmarks/resnet18_defaults.py --checkout . --train 300 --test 150   # one checkout alone
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = ("red", "green", "blue")


def make_folder(root: Path, train: int, test: int, size: int = 32, seed: int = 0) -> Path:
    """``train`` and ``test`` images (spread evenly over :data:`CLASSES`) as PNGs under ``root``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("test", test)):
        for i in range(n):
            label = i % len(CLASSES)
            pixels = rng.integers(0, 96, (size, size, 3), dtype=np.uint8)
            x, y = rng.integers(0, size // 2, 2)
            pixels[y:y + size // 2, x:x + size // 2, label] = 224
            folder = root / split / CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / f"{i:05d}.png")
    return root


def start(checkout: Path, data: Path, work: Path) -> subprocess.Popen:
    """``deadwood run`` of resnet18 at the defaults, with ``checkout``'s code first on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "deadwood", "run", "--model", "torchvision:resnet18", "--dataset", "folder",
               "--data-dir", str(data), "--image-size", "32", "--cache-dir", str(work / "cache")]
    log = open(work / "log.txt", "w")
    return subprocess.Popen(command, cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", action="append", type=Path, required=True,
                        help="a checkout whose engine runs (repeat: they run at the same time)")
    parser.add_argument("--train", type=int, default=300, help="training images (default 300)")
    parser.add_argument("--test", type=int, default=150, help="test images (default 150)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the data, caches and logs (default: a new temp folder)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="deadwood-resnet18-"))
    data = make_folder(work / "data", args.train, args.test)
    load = os.getloadavg()
    runs = []
    for i, checkout in enumerate(args.checkout):
        folder = work / f"checkout{i}"
        folder.mkdir(parents=True, exist_ok=True)
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        runs.append((checkout, commit, folder, time.perf_counter(), start(checkout.resolve(), data, folder)))
    out = {"work": str(work), "train_images": args.train, "test_images": args.test, "load_before": load, "runs": []}
    ended = {}
    while len(ended) < len(runs):  # each run's own end, whichever ends first
        for i, (*_, proc) in enumerate(runs):
            if i not in ended and proc.poll() is not None:
                ended[i] = time.perf_counter()
        time.sleep(1)
    for i, (checkout, commit, folder, t0, proc) in enumerate(runs):
        rc, wall = proc.returncode, ended[i] - t0
        row = {"checkout": str(checkout), "commit": commit, "rc": rc, "wall_seconds": round(wall, 1)}
        records = sorted((folder / "cache" / "runs").glob("*/record.json"))
        if records:  # read from the cache: it holds the profile, which comes after the run is published
            rec = json.loads(records[0].read_text())
            profile = rec.get("sparsity_profile") or {}
            row["timings"] = {k: round(v, 1) for k, v in rec.get("timings", {}).items()}
            row["profile"] = {"cuts": len(profile.get("sparsities", [])), "samples": profile.get("samples")}
            row["clean_accuracy"], row["teacher"] = rec.get("clean_accuracy"), (rec.get("teacher") or {}).get("clean_accuracy")
        else:
            row["log_tail"] = (folder / "log.txt").read_text()[-1500:]
        out["runs"].append(row)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0 if all(r["rc"] == 0 for r in out["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
