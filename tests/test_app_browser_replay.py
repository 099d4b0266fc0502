"""Real-browser check of the solve replayed: Play advances on the fragment's own timer, one epoch per
frame, and stops at the last epoch (Chromium through Playwright; the browser tests' server fixture)."""
import time
from urllib.parse import parse_qs, urlparse

import deadwood
from browsertest import chromium, open_page, server  # noqa: F401  (server: a fixture)


def test_play_runs_to_the_last_epoch_and_stops(server):  # noqa: F811
    config = deadwood.RunConfig()  # what the page's default widgets ask for
    deadwood.run(config, cache_dir=server.cache)  # the server's cache
    last = config.deadwooding.epochs
    with chromium() as browser:
        page = open_page(browser, f"{server}/walkthrough?step=3&epoch={last - 3}")
        slider = page.get_by_role("slider", name="Solve epoch")
        slider.wait_for(timeout=120_000)
        page.wait_for_timeout(1000)
        start = slider.get_attribute("aria-valuetext")
        page.get_by_role("button", name="Play").click()
        seen, deadline = [], time.time() + 90
        while time.time() < deadline:
            value = page.get_by_role("slider", name="Solve epoch").get_attribute("aria-valuetext")
            if not seen or seen[-1] != value:
                seen.append(value)
            if value == str(last) and page.get_by_role("button", name="Play").count():
                break
            page.wait_for_timeout(100)
        page.wait_for_timeout(3000)  # stopped: no further frame, the timer gone
        after = page.get_by_role("slider", name="Solve epoch").get_attribute("aria-valuetext")
        masks = page.locator(".js-plotly-plot").filter(has_text=f"after solve epoch {last}").count()
        body = page.inner_text("body")
        url = page.url
    assert start == str(last - 3)  # the link's epoch
    assert [int(v) for v in seen] == list(range(last - 3, last + 1)), seen  # one epoch per frame, in order
    assert after == str(last) and masks >= 1 and "Traceback" not in body
    assert parse_qs(urlparse(url).query).get("step") == ["3"]
