"""Debian's headless Chromium driven by Playwright, for the tests that look at a page.

Never a Playwright-downloaded browser: ``.ci/run`` installs Debian's chromium; a test skips
when it or Playwright is missing, or when the browser does not start.
"""

import contextlib
import os

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium():
    """A launched browser, closed on the way out."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("no /usr/bin/chromium (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as err:  # noqa: BLE001 - a broken browser install is not our bug
            pytest.skip(f"chromium does not start: {str(err).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()
