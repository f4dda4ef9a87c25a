"""Debian's Chromium driven by Playwright, against pytest-django's live server."""

import os
import struct
import zlib
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test are still
# synchronous and safe here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing at /usr/bin/chromium: `make test` installs it with apt")
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def png_content(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the decoded scanlines) of a PNG: a page that rendered
    has many; a blank or failed capture has a handful."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def assert_rendered(page, path: Path, *, texts: list[str]) -> None:
    """The screenshot is a real capture of the viewport's width, not blank, and the page shows `texts`."""
    page.screenshot(path=str(path), full_page=True)
    width, height, distinct = png_content(path)
    assert width == page.viewport_size["width"] and height >= page.viewport_size["height"], (width, height)
    assert distinct > 32, f"the screenshot looks blank ({distinct} distinct byte values)"
    body = page.inner_text("body")
    missing = [text for text in texts if text not in body]
    assert not missing, missing
