"""Real-browser tests: `streamlit run` on a free local port, Debian's headless Chromium presses Run.

Nothing leaves the machine: the server listens on 127.0.0.1 only, Chromium starts
with background networking off, and the engine's cache is a temporary folder.
"""
from apptest import open_live_page, shrink_stages
# the server fixture and the skip without Chromium or Playwright; other browser tests import them from here
from browsertest import CHROMIUM, CHROMIUM_FLAGS, server, sync_playwright  # noqa: F401  (server: a fixture)

RUN_TIMEOUT_S = 600  # a fresh default run is seconds on an idle CPU; a busy shared one is far slower
RECORD_CHART = ".st-key-fig_layer-sparsity"  # the finished run's per-layer sparsity (app.show, key "fig_layer-sparsity")


def record_chart(page):
    """The finished run's per-layer sparsity chart, once drawn. Streamlit can keep the previous rerun's copy
    of a keyed element, hidden, beside the new one for a moment, so only a visible one counts."""
    return page.locator(f"{RECORD_CHART} .js-plotly-plot").filter(visible=True).first


def test_pressing_run_in_chromium_draws_the_multiplier_chart(server, tmp_path):  # noqa: F811
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = open_live_page(browser, server)
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text("Stage 1 · Lagrangian-dual solve").first.wait_for(timeout=60_000)  # live progress
            # the results replace the live view once the run is over: the record's chart, not the stored
            # solve's cut that the page may show before fine-tuning (both can be on the page for a moment)
            record_chart(page).wait_for(timeout=RUN_TIMEOUT_S * 1000)
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


def test_two_pages_run_different_settings_at_once_and_each_shows_its_own(server):  # noqa: F811
    """Two visitors at once, as in a live demo: each presses Run on its own small configuration."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            pages = [open_live_page(browser, server), open_live_page(browser, server)]
            for seed, page in zip((31, 32), pages):
                shrink_stages(page, seed)
            slider = pages[1].get_by_role("slider", name="Target sparsity κ")
            slider.focus()
            for _ in range(3):  # 0.95 -> 0.94 -> 0.92 -> 0.9: the κ slider's stops, as the arrow keys move it
                slider.press("ArrowLeft")
            pages[1].wait_for_function("() => location.search.includes('sparsity=0.9&') || "
                                       "location.search.endsWith('sparsity=0.9')", timeout=10_000)
            for page in pages:  # both clicked before either is waited on: the two runs overlap
                page.get_by_role("button", name="Run", exact=True).click()
            bodies = []
            for page in pages:
                record_chart(page).wait_for(timeout=RUN_TIMEOUT_S * 1000)
                bodies.append(page.inner_text("body"))
        finally:
            browser.close()
    first, second = bodies
    assert "dashed: global 95.0%" in first and "dashed: global 90.0%" not in first
    assert "dashed: global 90.0%" in second and "dashed: global 95.0%" not in second
    assert "Traceback" not in first + second
