"""Chromium draws Live pruning's charts for a run of 52 prunable layers (as many as
mobilenet_v3_small) whose models are at chance: no legend box overlaps a chart's title or its plot
area, and the chance warning is on the page instead of a change against the teacher.

The run is written straight into the server's cache (the record as a run writes it, with a
synthetic history), so the page draws it at once: one page load, no training. A screenshot goes to
the test's temporary folder for a person to look at; nothing is committed."""
from fakerun import many_layer_run
from test_app_browser import CHROMIUM, CHROMIUM_FLAGS, sync_playwright  # noqa: F401
from apptest import serve

# Bounding boxes (page pixels) of each chart's title, legend and plot areas, drawn by Plotly.
BOXES = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
  const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
                      return r.width && r.height ? {x: r.x, y: r.y, w: r.width, h: r.height} : null; };
  return {title: (plot.querySelector('.gtitle') || {}).textContent || '',
          titleBox: box(plot.querySelector('.g-gtitle')), legend: box(plot.querySelector('g.legend')),
          plots: [...plot.querySelectorAll('.draglayer .nsewdrag')].map(box).filter(b => b)};
})"""


def _overlap(a, b, slack=1.0) -> bool:
    return (a["x"] + slack < b["x"] + b["w"] and b["x"] + slack < a["x"] + a["w"]
            and a["y"] + slack < b["y"] + b["h"] and b["y"] + slack < a["y"] + a["h"])


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
            charts = page.evaluate(BOXES)
            body = page.inner_text("body")
        finally:
            browser.close()
    assert len(charts) >= 5, [c["title"] for c in charts]
    for chart in charts:
        assert chart["titleBox"] is not None, chart["title"]
        if chart["legend"] is None:
            continue
        assert not _overlap(chart["legend"], chart["titleBox"]), chart["title"]
        for plot in chart["plots"]:
            assert not _overlap(chart["legend"], plot), chart["title"]
    assert "at chance level" in body and "pts vs teacher" not in body
    assert "Traceback" not in body
