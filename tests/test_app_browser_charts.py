"""Chromium draws Live pruning's charts for a run of 52 prunable layers (as many as
mobilenet_v3_small) whose models are at chance: no legend box overlaps a chart's title or its plot
area, and the chance warning is on the page instead of a change against the teacher.

The run is written straight into the server's cache (the record as a run writes it, with a
synthetic history), so the page draws it at once: one page load, no training. A screenshot of the page and
one of each chart go to the test's temporary folder for a person to look at; nothing is committed."""
from fakerun import many_layer_run
from test_app_browser import CHROMIUM, CHROMIUM_FLAGS, sync_playwright  # noqa: F401
from apptest import assert_legends_clear, chart_boxes, serve, shoot_charts


def test_legends_clear_titles_and_plots_on_52_layers_and_the_chance_warning_shows(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DEADWOOD_CACHE", str(cache))
    record = many_layer_run(cache)
    assert len(record.warnings) == 2
    with serve(cache, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2600})
            page.goto(url)
            for title in ("Lagrange multipliers", "Per-layer sparsity", "Dead wood forming", "Robustness at"):
                page.locator(".js-plotly-plot").filter(has_text=title).first.wait_for(timeout=120_000)
            page.wait_for_timeout(2000)  # Plotly's last layout pass
            page.screenshot(path=str(tmp_path / "live-52-layers.png"), full_page=True)
            shoot_charts(page, tmp_path / "charts")  # and each chart on its own
            charts = chart_boxes(page)
            body = page.inner_text("body")
        finally:
            browser.close()
    assert len(charts) >= 5, [c["title"] for c in charts]
    assert_legends_clear(charts)
    assert "at chance level" in body and "pts vs teacher" not in body
    assert "Traceback" not in body
