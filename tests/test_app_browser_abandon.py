"""Real-browser check that an abandoned page never holds the server up: a tab closed during a long run
lets a run pressed in another tab start within the abandonment time (shortened here through
``DEADWOOD_ABANDON_AFTER``) plus a few seconds, instead of after the whole long run."""
import time

import pytest

from apptest import open_live_page, serve, set_number, shrink_stages
from test_app_browser import CHROMIUM, CHROMIUM_FLAGS, RUN_TIMEOUT_S, record_chart, sync_playwright

ABANDON_AFTER = 10  # seconds: the server's $DEADWOOD_ABANDON_AFTER in this test; well above a poll gap on a busy machine
# what a busy shared machine may add: the closed run's next epoch, a queue look, a page poll, and the
# new run's first event (its worker is already started); the closed run alone would take many minutes
SLACK_S = 30


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("DEADWOOD_ABANDON_AFTER", str(ABANDON_AFTER))
    with serve(tmp_path / "cache", tmp_path / "streamlit.log") as url:
        yield url


def test_a_run_pressed_after_a_tab_closed_mid_run_starts_within_the_abandonment_time(server):
    from app.widgets import ADVANCED

    labels = {f.key: f.label for f in ADVANCED}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            closed = open_live_page(browser, server)
            closed.get_by_text("Advanced", exact=True).click()
            for key, value in {"teacher_epochs": 1000, "dual_epochs": 1000, "seed": 51}.items():
                set_number(closed, labels[key], value)  # a teacher of 1000 epochs: minutes, even on digits
            closed.get_by_role("button", name="Run", exact=True).click()
            closed.get_by_text("Stage 0 · dense teacher: epoch").first.wait_for(timeout=120_000)

            new = open_live_page(browser, server)  # set up while the long run's tab still follows it
            shrink_stages(new, 52)
            closed_url = closed.url  # it names the run's hold (?live=...)
            assert "live=" in closed_url
            closed.close()
            t0 = time.perf_counter()
            new.get_by_role("button", name="Run", exact=True).click()
            seen, started = set(), None
            deadline = t0 + ABANDON_AFTER + SLACK_S + 60
            while started is None and time.perf_counter() < deadline:
                body = new.inner_text("body")
                if "Queued behind 1 run" in body:
                    seen.add("queued")
                if "Computing now: deadwooding at κ = 0.95" in body and "on digits/mlp · Stage 0 · dense teacher" in body:
                    seen.add("ahead")
                if "Running deadwooding" in body or "Per-layer sparsity" in body:
                    started = time.perf_counter() - t0
                new.wait_for_timeout(200)
            record_chart(new).wait_for(timeout=RUN_TIMEOUT_S * 1000)
            body = new.inner_text("body")
            back = browser.new_page()  # the closed tab's address, opened again: its run was stopped, and why
            back.goto(closed_url)
            back.get_by_text(f"no page followed it for {ABANDON_AFTER} s").first.wait_for(timeout=60_000)
        finally:
            browser.close()
    print(f"\nthe new tab's run started {started} s after Run (abandonment time {ABANDON_AFTER} s)")
    assert seen == {"queued", "ahead"}  # it waited behind the closed tab's run, and named it
    assert started is not None and started < ABANDON_AFTER + SLACK_S
    assert "Traceback" not in body
