"""Helpers shared by the app tests: for AppTest, the app's path, small stage settings for the
"Advanced" widgets, widget look-up, and waiting for a background run; for real browsers (the
browser test and benchmarks/app_speed.py), a `streamlit run` server on 127.0.0.1 and Debian's
headless Chromium with the flags that keep it off the network, and the checks of the charts a page
draws (each chart's title, legend and plot boxes; a picture of each chart)."""
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "streamlit_app.py")
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# every stage shrunk through the app's own widgets; each test file adds its own seed
FAST_STAGES = dict(teacher_epochs=2, dual_epochs=2, hydra_epochs=1, finetune_epochs=1, eval_samples=60, eval_steps=2)


def widget(at, key):
    for kind in ("number_input", "slider", "select_slider", "selectbox", "multiselect", "radio", "text_input"):
        found = [w for w in getattr(at, kind) if w.key == key]
        if found:
            return found[0]
    raise KeyError(key)


def running(at) -> bool:
    return any(b.key == "stop" for b in at.button)


def run_to_end(at, timeout=600, press=True):
    if press:
        at.button(key="run").click().run()
    deadline = time.time() + timeout
    while running(at):
        assert time.time() < deadline, "the run did not finish"
        time.sleep(0.3)
        at.run()
    assert not at.exception, at.exception
    return at


def figures(at) -> dict:
    return {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


class Url(str):
    pid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(cache: Path, log: Path, flags=(), root: Path = ROOT):
    """`streamlit run` the app from the repository root (so its .streamlit/config.toml applies) on a
    free local port with the engine's cache in ``cache``; yields the URL (its ``pid`` attribute: the
    server's process), and stops the server after.
    ``root``: another checkout to serve (its code first on the path), for side-by-side benchmarks."""
    port = _free_port()
    env = dict(os.environ, DEADWOOD_CACHE=str(cache))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none", *flags], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = Url(f"http://127.0.0.1:{port}")
        url.pid = proc.pid
        try:
            deadline = time.time() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.read() == b"ok":
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not start: {Path(log).read_text()[-2000:]}")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def open_live_page(browser, url):
    """A new Chromium page on the app, once its Run button is there."""
    page = browser.new_page(viewport={"width": 1440, "height": 2300})
    page.goto(url)
    page.get_by_role("button", name="Run", exact=True).wait_for(timeout=60_000)
    return page


def set_number(page, label: str, value) -> None:
    """Type ``value`` into the number input labelled ``label`` (open the "Advanced" expander first)."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(300)


def shrink_stages(page, seed: int) -> None:
    """Open "Advanced" and set the small stages of :data:`FAST_STAGES` and ``seed``, as a user would."""
    from app.widgets import ADVANCED

    labels = {f.key: f.label for f in ADVANCED}
    page.get_by_text("Advanced", exact=True).click()
    for key, value in dict(FAST_STAGES, seed=seed).items():
        set_number(page, labels[key], value)


# Bounding boxes (page pixels) of each chart's title, legend and plot areas, drawn by Plotly.
_BOXES = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
  const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
                      return r.width && r.height ? {x: r.x, y: r.y, w: r.width, h: r.height} : null; };
  return {title: (plot.querySelector('.gtitle') || {}).textContent || '',
          titleBox: box(plot.querySelector('.g-gtitle')), legend: box(plot.querySelector('g.legend')),
          plots: [...plot.querySelectorAll('.draglayer .nsewdrag')].map(box).filter(b => b)};
})"""


def chart_boxes(page) -> list[dict]:
    """Every Plotly chart on ``page``: its ``title`` text and the boxes of its title (``titleBox``), its
    legend (``legend``, None when it has none) and its plot areas (``plots``)."""
    return page.evaluate(_BOXES)


def _overlap(a, b, slack=1.0) -> bool:
    return (a["x"] + slack < b["x"] + b["w"] and b["x"] + slack < a["x"] + a["w"]
            and a["y"] + slack < b["y"] + b["h"] and b["y"] + slack < a["y"] + a["h"])


def assert_legends_clear(charts: list[dict]) -> None:
    """Every chart of :func:`chart_boxes` has a title, and no legend's box overlaps its chart's title or
    any of its plot areas."""
    for chart in charts:
        assert chart["titleBox"] is not None, chart["title"]
        if chart["legend"] is None:
            continue
        assert not _overlap(chart["legend"], chart["titleBox"]), chart["title"]
        for plot in chart["plots"]:
            assert not _overlap(chart["legend"], plot), chart["title"]


def shoot_charts(page, folder: Path) -> list[Path]:
    """A picture of each Plotly chart on ``page`` in ``folder`` (``NN-<title>.png``), for a person to look at."""
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    plots = page.locator(".js-plotly-plot")
    for i in range(plots.count()):
        plot = plots.nth(i)
        title = plot.locator(".gtitle").first.text_content() if plot.locator(".gtitle").count() else "untitled"
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "untitled"
        shots.append(folder / f"{i:02d}-{slug}.png")
        plot.scroll_into_view_if_needed()
        plot.screenshot(path=str(shots[-1]))
    return shots
