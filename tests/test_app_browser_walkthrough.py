"""Real-browser checks of the Walkthrough page and of links that carry the view (Chromium through
Playwright; the browser tests' server fixture, on an empty temporary cache)."""
from urllib.parse import parse_qs, urlparse

from browsertest import chromium, open_page, server  # noqa: F401  (server: a fixture)


def test_a_link_to_step_3_opens_step_3(server):  # noqa: F811
    with chromium() as browser:
        page = open_page(browser, f"{server}/walkthrough?step=3")
        page.get_by_text("Step 3 of 6: The solve, replayed").wait_for(timeout=60_000)
        page.get_by_role("button", name="Run these settings").wait_for(timeout=30_000)  # the empty cache's offer
        page.get_by_role("button", name="Next").click()
        page.get_by_text("Step 4 of 6: One global cut").wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        url = page.url
        body = page.inner_text("body")
        sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert parse_qs(urlparse(url).query).get("step") == ["4"]  # Next wrote the step back into the address
    assert "Traceback" not in body
    assert sidebar.index("Live pruning") < sidebar.index("Walkthrough") < sidebar.index("Compare methods")


def test_a_copied_link_opens_the_same_view_and_a_bad_value_the_defaults(server):  # noqa: F811
    with chromium() as browser:
        page = open_page(browser, f"{server}/?method=magnitude&epsilon=0.2")
        slider = page.get_by_role("slider", name="Target sparsity κ")
        slider.wait_for(timeout=60_000)
        slider.focus()
        slider.press("ArrowRight")  # 0.95 -> 0.96, the next stop
        page.wait_for_function("() => location.search.includes('sparsity=0.96')", timeout=30_000)
        copied = page.url
        again = open_page(browser, copied)  # a new session: only the address carries the view
        kappa = again.get_by_role("slider", name="Target sparsity κ")
        kappa.wait_for(timeout=60_000)
        again.wait_for_timeout(1000)
        seen = (kappa.get_attribute("aria-valuetext"),
                again.get_by_role("slider", name="Run budget ε (train and evaluate)").get_attribute("aria-valuetext"),
                again.get_by_role("combobox", name="Method").input_value())
        bad = open_page(browser, f"{server}/?method=nope&sparsity=1.5")
        bad.get_by_text("method='nope'").wait_for(timeout=60_000)
        bad_body = bad.inner_text("body")
        bad_kappa = bad.get_by_role("slider", name="Target sparsity κ").get_attribute("aria-valuetext")
    query = parse_qs(urlparse(copied).query)
    assert query["sparsity"] == ["0.96"] and query["method"] == ["magnitude"] and query["epsilon"] == ["0.2"]
    assert seen[0] == "0.96" and float(seen[1]) == 0.2 and seen[2] == "magnitude"
    assert "sparsity='1.5'" in bad_body and bad_kappa == "0.95" and "Traceback" not in bad_body
