"""One real-browser test: `streamlit run` on a free local port, Debian's headless Chromium presses Run.

Nothing leaves the machine: the server listens on 127.0.0.1 only, Chromium starts
with background networking off, and the engine's cache is a temporary folder.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RUN_TIMEOUT_S = 600  # a fresh default run is seconds on an idle CPU; a busy shared one is far slower

if not CHROMIUM.exists():
    pytest.skip(f"Chromium not found ({CHROMIUM}): install it (apt-get install -y chromium) to run the "
                "real-browser test", allow_module_level=True)
sync_playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                                      "(pip install playwright)").sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = dict(os.environ, DEADWOOD_CACHE=str(tmp_path / "cache"))
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "deadwood_app/streamlit_app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
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
                pytest.fail(f"streamlit did not start: {(tmp_path / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_pressing_run_in_chromium_draws_the_multiplier_chart(server, tmp_path):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2300})
            page.goto(server)
            run = page.get_by_role("button", name="Run", exact=True)
            run.wait_for(timeout=60_000)
            run.click()
            page.get_by_text("Stage 1 · Lagrangian-dual solve").first.wait_for(timeout=60_000)  # live progress
            # the results replace the live view once the run is over
            page.locator(".js-plotly-plot").filter(has_text="Per-layer sparsity").wait_for(
                timeout=RUN_TIMEOUT_S * 1000)
            multipliers = page.locator(".js-plotly-plot").filter(
                has_text="Lagrange multipliers and constraint violations")
            multipliers.wait_for(timeout=30_000)
            page.wait_for_timeout(1500)  # let Plotly finish its transitions before the picture
            shot = tmp_path / "live-page.png"
            page.screenshot(path=str(shot))
            body = page.inner_text("body")
            traces = multipliers.locator("g.trace").count()
        finally:
            browser.close()
    assert shot.stat().st_size > 50_000
    assert "Lagrange multipliers and constraint violations" in body
    assert traces == 10  # MLP: 3 layer constraints + distillation + robustness, in both panels
    assert "Global sparsity" in body and "95.00%" in body  # the default target, met by the one cut
    assert "Traceback" not in body
