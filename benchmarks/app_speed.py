"""How fast the app answers: a fresh run of the embedded default, and a cached one, through the app's own code.

Drives ``deadwood_app/streamlit_app.py`` headlessly (Streamlit's AppTest, the same script a browser
gets): presses Run with the default widgets in an empty cache and waits for the charts (fresh),
then opens a new session on the same cache and times the render (cached), and moves the
sparsity slider away and back to a computed value (slider redraw). Timings on a shared machine
are noisy: each is the median of ``--repeats``. A benchmark, not a test.

    python benchmarks/app_speed.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

APP = str(Path(__file__).resolve().parents[1] / "deadwood_app" / "streamlit_app.py")


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=900)


def fresh_run() -> dict:
    """Seconds from pressing Run (empty cache) until the page shows the results."""
    os.environ["DEADWOOD_CACHE"] = tempfile.mkdtemp(prefix="deadwood-bench-")
    at = _app().run()
    t0, cpu0 = time.perf_counter(), _cpu()
    at.button(key="run").click().run()
    while any(b.key == "stop" for b in at.button):
        time.sleep(0.05)
        at.run()
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    assert not at.exception and at.get("plotly_chart"), "the run did not draw its charts"
    from deadwood import RunConfig
    from deadwood.pipeline import Cache
    from deadwood.record import read_record

    engine = read_record(Cache().run_dir(RunConfig())).timings["total"]
    # CPU seconds of this process (all threads): less sensitive than wall time to other work on the machine
    return {"page_seconds": seconds, "engine_seconds": engine, "cpu_seconds": cpu}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cached_render() -> dict:
    """A new session on the cache ``fresh_run`` filled: first render, and a slider move back to a computed value."""
    at = _app()
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    assert len(at.get("plotly_chart")) >= 4, "the cached run was not drawn"
    slider = next(s for s in at.slider if s.key == "sparsity")
    slider.set_value(0.9).run()  # not computed: the page says so
    t0 = time.perf_counter()
    slider.set_value(0.95).run()
    back = time.perf_counter() - t0
    assert len(at.get("plotly_chart")) >= 4
    return {"first_render_seconds": first, "slider_redraw_seconds": back}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for i in range(args.repeats):
        row = {**fresh_run(), **cached_render()}
        rows.append(row)
        print(f"repeat {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), file=sys.stderr)
    summary = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(json.dumps({"median": summary, "repeats": rows, "load_average": os.getloadavg()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
