"""Real-browser checks of the app's pages (Chromium through Playwright; the server fixture is the
browser suite's): a shared link opened first on a fresh server opens its own page, the favicon needs
no network, and Run on Compare methods takes the first click after the sparsity grid changes."""
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


def test_run_on_compare_takes_the_first_click_after_the_sparsity_grid_changes(server):  # noqa: F811
    """Run used to sit under the sparsity multiselect: the options list it opens covered the button, so
    the first click landed on the list (and picked a sparsity) instead of starting the runs."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{server}/compare")
            run = page.get_by_role("button", name="Run", exact=True)
            run.wait_for(timeout=60_000)
            page.get_by_role("button", name="Remove 90.0%").last.click()
            page.wait_for_timeout(500)  # the rerun the removal caused
            where = run.bounding_box()  # (while the list is open the rest of the page is hidden from roles)
            page.get_by_role("combobox", name="Sparsity grid").last.click()  # the options list opens below
            page.get_by_role("listbox").first.wait_for(timeout=10_000)
            page.mouse.click(where["x"] + where["width"] / 2, where["y"] + where["height"] / 2)  # a person's click
            stop = page.get_by_role("button", name="Stop")
            stop.wait_for(timeout=60_000)  # the runs started
            grid = page.locator("[data-testid='stMultiSelect']").filter(has_text="Sparsity grid")
            chosen = grid.locator(".react-aria-ComboBox [data-tag]").all_inner_texts()
            stop.click()
        finally:
            browser.close()
    assert chosen == ["95.0%", "98.0%", "99.0%"]
