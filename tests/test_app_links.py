"""Real-browser checks of the app's URLs: a shared link opened first on a freshly started server
opens its own page, and the favicon needs no network (Chromium through Playwright; the server fixture
is the browser suite's)."""
import pytest

from test_app_browser import CHROMIUM, CHROMIUM_FLAGS, server, sync_playwright  # noqa: F401  (server: a fixture)


@pytest.mark.parametrize("path, title", [("explorer", "Robustness explorer"), ("compare", "Compare methods"),
                                         ("inside", "Inside the network")])
def test_a_shared_link_opens_its_own_page_on_a_fresh_server(server, path, title):  # noqa: F811
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{server}/{path}")  # the first request this server ever gets
            heading = page.locator("h1").first
            heading.wait_for(timeout=60_000)
            text = heading.inner_text()
            url = page.url
            page.get_by_text("Live pruning").first.wait_for(timeout=30_000)  # the app's own navigation
            sidebar = page.locator("[data-testid='stSidebar']").inner_text()
            icon = page.locator("link[rel='shortcut icon']").get_attribute("href")
        finally:
            browser.close()
    assert text == title
    assert url.rstrip("/").endswith(f"/{path}")
    # drawn by the entry point, so the page ran inside the app's navigation, not on its own
    assert "Deadwood Lab · robust global pruning" in sidebar
    assert all(name in sidebar for name in ("Live pruning", "Compare methods", "Robustness explorer",
                                            "Inside the network"))
    assert icon.startswith("data:image/svg+xml")  # the favicon is drawn in place: nothing fetched, works offline
