"""How fast the solve replays (Walkthrough step 3) on the embedded default, and what its snapshots cost.

Runs the embedded default once into a cache of its own (``--cache``, else a new temporary folder),
then opens the Walkthrough at step 3 in Streamlit's AppTest and moves the epoch slider over every
epoch, ``--repeats`` times. A frame's time is the replay fragment's own script time (what one replay
rerun costs the server while playing: the frame drawn and its figures serialised), read from
``app.replay_panel.FRAME_SECONDS``; the whole page's rerun under AppTest is printed beside it. The
first frame, which prepares every epoch's frame once for the solve and κ, is reported apart.

It also states the snapshots' size on disk (exact) and times writing them (the solve's extra work
per entry). Goal: a median frame under 0.3 s. A benchmark, not a test; run it on a quiet machine.

    PYTHONPATH=$PWD python benchmarks/replay_speed.py [--repeats 3] [--cache DIR]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "streamlit_app.py")
GOAL = 0.3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="passes over every epoch")
    ap.add_argument("--cache", help="the engine's cache (default: a new temporary folder)")
    args = ap.parse_args()
    os.environ["DEADWOOD_CACHE"] = args.cache or tempfile.mkdtemp(prefix="deadwood-replay-")

    import deadwood
    from deadwood.pipeline import Cache
    from deadwood.storage.files import atomic_save_tensors
    from deadwood.storage.solves import SNAPSHOT_FILE
    from streamlit.testing.v1 import AppTest

    from app.replay_panel import FRAME_SECONDS

    config = deadwood.RunConfig()
    t0 = time.perf_counter()
    deadwood.run(config)
    print(f"default run (or served from the cache): {time.perf_counter() - t0:.1f} s")
    store = Cache().solves
    snaps = store.snapshots(config)
    if snaps is None:
        raise SystemExit("the stored solve has no snapshots (stored before them?): use a fresh --cache")
    note = store.summary(config)["snapshots"]
    size = (store.folder(config) / SNAPSHOT_FILE).stat().st_size
    print(f"snapshots: {note['epochs']} epochs x {note['weights']:,} weights x 2 bytes = "
          f"{note['epochs'] * note['weights'] * 2:,} bytes of data; the file: {size:,} bytes")
    flat = {f"{e}/{n}": w for e, s in enumerate(snaps) for n, w in s.items()}
    writes = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(5):
            t0 = time.perf_counter()
            atomic_save_tensors(Path(tmp) / f"{i}.safetensors", flat)
            writes.append(time.perf_counter() - t0)
    print(f"writing them (safetensors, fsync'd, renamed): median {statistics.median(writes) * 1e3:.1f} ms of 5")

    at = AppTest.from_file(APP, default_timeout=300)
    at.switch_page("views/walkthrough.py")
    at.query_params["step"] = "3"
    t0 = time.perf_counter()
    at.run()
    assert not at.exception, at.exception
    print(f"first open of step 3 (page + preparing the frames): {time.perf_counter() - t0:.2f} s, "
          f"its replay fragment {at.session_state[FRAME_SECONDS]:.3f} s")
    frames, pages = [], []
    for _ in range(args.repeats):
        for epoch in range(1, note["epochs"] + 1):
            t0 = time.perf_counter()
            [w for w in at.slider if w.key == "epoch"][0].set_value(epoch).run()
            pages.append(time.perf_counter() - t0)
            assert not at.exception, at.exception
            frames.append(at.session_state[FRAME_SECONDS])
    median = statistics.median(frames)
    print(f"replay frame (fragment script time): median {median:.3f} s, max {max(frames):.3f} s "
          f"over {len(frames)} frames; whole page rerun under AppTest: median {statistics.median(pages):.3f} s")
    print(f"load average: {os.getloadavg()[0]:.2f}; goal: median frame < {GOAL} s: "
          f"{'met' if median < GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
