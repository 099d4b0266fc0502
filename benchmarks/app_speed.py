"""How fast the app answers: a fresh run of the embedded default, and a cached one, through the app's own code.

Headless part (Streamlit's AppTest, the same script a browser gets): presses Run with the
default widgets in an empty cache and waits for the charts (fresh), then opens a new session
on the same cache and times the render (cached), and moves the sparsity slider away and back
to a computed value (slider redraw).

Watched part (``--watched``; a real `streamlit run` server on 127.0.0.1 and Debian's headless
Chromium, as in tests/test_app_browser.py): a fresh default run, from the click on Run until its
record is in the cache (``seed0_wall``) and until the page has drawn it (``all_pages_drawn``: the
record is published before the sparsity profile, whose bar goes on while the results are shown), with 0 pages watching (the page that pressed Run closes at once),
1 page, and 3 pages (all press Run on the same settings, so they follow one job); then two
pages pressing Run at once on different settings (seeds 0 and 1). Each measurement gets a new
server and an empty cache, and waits ``--warm`` seconds after the first page load so the
server's worker process has imported torch, as it has by the time a user reaches for Run.
``--app-root`` serves another checkout instead (e.g. an older commit, for side by side).
The engine's own ``timings["total"]`` is reported next to each wall time: it is measured
inside the run, and should not grow with the number of pages watching.

Timings on a shared machine are noisy: each is the median of ``--repeats``, the variants
alternate within each repeat, and the load average is printed. A benchmark, not a test.

    python benchmarks/app_speed.py [--repeats 3] [--watched] [--app-root DIR]

The fresh default run, Run to drawn results, with one Chromium page (``all_pages_drawn`` of ``pages1``)::

    python benchmarks/app_speed.py --watched --variants pages1 --repeats 5
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

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "streamlit_app.py")


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=900)


def _drawn(at) -> bool:
    """Whether the page shows the run's results (its per-layer sparsity chart)."""
    return any(el.key == "fig_layer-sparsity" for el in at.get("plotly_chart"))


def fresh_run() -> dict:
    """Seconds from pressing Run (empty cache) until the page shows the results: the run's record is
    drawn while its sparsity profile, the last stage, goes on; ``profile_done_seconds`` is until the job ends."""
    os.environ["DEADWOOD_CACHE"] = tempfile.mkdtemp(prefix="deadwood-bench-")
    at = _app().run()
    t0, cpu0 = time.perf_counter(), _cpu()
    at.button(key="run").click().run()
    while not _drawn(at) and any(b.key == "stop" for b in at.button):
        time.sleep(0.05)
        at.run()
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    assert not at.exception and _drawn(at), "the run did not draw its charts"
    while any(b.key == "stop" for b in at.button):  # the profile: the cached render below starts after it
        time.sleep(0.05)
        at.run()
    done = time.perf_counter() - t0
    from deadwood import RunConfig
    from deadwood.pipeline import Cache
    from deadwood.storage.record import read_record

    engine = read_record(Cache().run_dir(RunConfig())).timings["total"]
    # CPU seconds of this process (all threads): less sensitive than wall time to other work on the machine
    return {"page_seconds": seconds, "engine_seconds": engine, "cpu_seconds": cpu, "profile_done_seconds": done}


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
    slider = next(s for s in at.select_slider if s.key == "sparsity")
    slider.set_value(0.9).run()  # not computed: the page says so
    t0 = time.perf_counter()
    slider.set_value(0.95).run()
    back = time.perf_counter() - t0
    assert len(at.get("plotly_chart")) >= 4
    return {"first_render_seconds": first, "slider_redraw_seconds": back}


# ---------------------------------------------------------------- watched: real server, real Chromium
def _record_seconds(folder: Path, seed: int) -> float | None:
    """The engine's total of the default run at ``seed`` in cache ``folder``, once its record is there.
    Found by its config, not by its key: another checkout (``--app-root``) has another code
    fingerprint, so this checkout's key would never appear."""
    for path in (folder / "runs").glob("*/record.json"):  # written atomically: never half there
        record = json.loads(path.read_text())
        if record["config"]["seed"] == seed:
            return record["timings"]["total"]
    return None


def _wait_for_records(folder: Path, seeds, t0: float, timeout: float = 1800) -> dict:
    """Seconds from ``t0`` until each seed's record is in the cache, and the engine's own total."""
    out = {}
    while len(out) < len(seeds):
        for seed in seeds:
            if seed not in out:
                engine = _record_seconds(folder, seed)
                if engine is not None:
                    out[seed] = {"wall": time.perf_counter() - t0, "engine": engine}
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"no record after {timeout} s")
        time.sleep(0.05)
    return out


def _cpu_of(pid: int) -> float:
    """CPU seconds of process ``pid`` itself (not its children: the worker's are the run's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _browser_cpu() -> float:
    """CPU seconds of the Chromium processes this benchmark started (descendants of this process)."""
    parents, total = {}, 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int(d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    for pid in parents:
        up = pid
        while up in parents and up != os.getpid():
            up = parents[up]
        try:
            if up == os.getpid() and "chromium" in Path(f"/proc/{pid}/cmdline").read_text():
                total += _cpu_of(pid)
        except OSError:
            pass
    return total


def watched_run(variant: str, root: Path, warm: float) -> dict:
    """One measurement of ``variant`` (pages0, pages1, pages3, two_configs) on a new server and cache."""
    sys.path.insert(0, str(ROOT / "tests"))
    from apptest import CHROMIUM, CHROMIUM_FLAGS, open_live_page, serve, set_number
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="deadwood-bench-watched-"))
    n_pages = {"pages0": 1, "pages1": 1, "pages3": 3, "two_configs": 2}[variant]
    load = os.getloadavg()[0]
    with serve(folder / "cache", folder / "streamlit.log", root=root) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            pages = [open_live_page(browser, url) for _ in range(n_pages)]
            seeds = (0,)
            if variant == "two_configs":
                pages[1].get_by_text("Advanced", exact=True).click()
                set_number(pages[1], "Seed", 1)
                seeds = (0, 1)
            time.sleep(warm)
            t0, cpu0, browser0 = time.perf_counter(), _cpu_of(url.pid), _browser_cpu()
            for page in pages:
                page.get_by_role("button", name="Run", exact=True).click()
            if variant == "pages0":
                pages[0].close()
            done = _wait_for_records(folder / "cache", seeds, t0)
            server_cpu = _cpu_of(url.pid) - cpu0  # what watching costs, whatever else loads the machine
            browser_cpu = _browser_cpu() - browser0
            if variant != "pages0":  # every page draws its results
                for page in pages:
                    page.locator(".js-plotly-plot").filter(has_text="Per-layer sparsity").first.wait_for(
                        timeout=600_000)  # always drawn with a record; .first: a rerun may briefly hold two
            page_seconds = time.perf_counter() - t0
        finally:
            browser.close()
    row = {f"seed{seed}_{k}": v for seed, d in done.items() for k, v in d.items()}
    row["server_cpu"] = server_cpu
    if variant != "pages0":  # a closed page's processes are gone, and their CPU seconds with them
        row["browser_cpu"] = browser_cpu
    if variant != "pages0":
        row["all_pages_drawn"] = page_seconds
    row["load_before"], row["load_after"] = load, os.getloadavg()[0]
    return row


VARIANTS = ("pages0", "pages1", "pages3", "two_configs")


def watched(repeats: int, root: Path, warm: float, variants=VARIANTS) -> dict:
    rows = {v: [] for v in variants}
    for i in range(repeats):
        order = variants if i % 2 == 0 else variants[::-1]  # alternate: drifting load hits each alike
        for variant in order:
            row = watched_run(variant, root, warm)
            rows[variant].append(row)
            print(f"repeat {i + 1} {variant}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), file=sys.stderr)
    median = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in rows.items()}
    wall = {v: m["seed0_wall"] for v, m in median.items()}
    ratios = {f"{v}_over_pages0": wall[v] / wall["pages0"] for v in ("pages1", "pages3") if v in wall and "pages0" in wall}
    if "two_configs" in median and "pages1" in median:  # the slower of the two against a lone watched run
        ratios["two_configs_over_lone"] = max(wall["two_configs"], median["two_configs"]["seed1_wall"]) / wall["pages1"]
    return {"median": median, "ratios": ratios, "repeats": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--watched", action="store_true", help="real server and Chromium pages watching runs")
    parser.add_argument("--app-root", type=Path, default=ROOT, help="the checkout to serve (with --watched)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS, help="with --watched")
    parser.add_argument("--warm", type=float, default=8.0,
                        help="seconds between the first page load and Run (with --watched)")
    args = parser.parse_args(argv)
    if args.watched:
        out = watched(args.repeats, args.app_root.resolve(), args.warm, tuple(args.variants))
        print(json.dumps({**out, "app_root": str(args.app_root), "load_average": os.getloadavg()}, indent=1))
        return 0
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
