"""What the real-browser tests share: a `streamlit run` server on a temporary cache of the test's own
(the ``server`` fixture), and Debian's headless Chromium driven through Playwright
(:func:`chromium`, :func:`open_page`).

Importing this module skips the importing test module when Chromium or Playwright is missing.
Nothing leaves the machine: the server listens on 127.0.0.1 only and Chromium starts with
background networking off (:mod:`apptest`)."""
import contextlib

import pytest

from apptest import CHROMIUM, CHROMIUM_FLAGS, serve

if not CHROMIUM.exists():
    pytest.skip(f"Chromium not found ({CHROMIUM}): install it (apt-get install -y chromium) to run the "
                "real-browser test", allow_module_level=True)
sync_playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                                      "(pip install playwright)").sync_playwright

VIEWPORT = {"width": 1440, "height": 1400}


@pytest.fixture
def server(tmp_path):
    """The app's URL on a free local port; ``server.cache`` is the engine's cache it reads, empty at the
    start (a test stores a run there for the page to find)."""
    cache = tmp_path / "cache"
    with serve(cache, tmp_path / "streamlit.log") as url:
        url.cache = cache
        yield url


@contextlib.contextmanager
def chromium():
    """Headless Chromium, closed when the block ends (a failure inside it included)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url):
    """A new page of ``browser`` (:data:`VIEWPORT`) on ``url``."""
    page = browser.new_page(viewport=dict(VIEWPORT))
    page.goto(url)
    return page
