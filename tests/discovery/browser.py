"""A headless Chromium (Debian's package, `make services`) driven by Playwright, offline.

Playwright's own browser download is not used: it needs a CDN. The Debian build is launched by
path, and every host name resolves to nothing (``--host-resolver-rules``), so a page that tried
the network could not reach it even if the request log missed something.

``python -m tests.discovery.browser DIR PNG`` screenshots DIR/index.html (docs/catalog-screenshot.png).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

#: Debian's binary behind the /usr/bin/chromium wrapper script.
_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
ARGS = ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking"]


def chromium_path() -> str:
    for candidate in _CANDIDATES:
        found = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if found:
            return found
    raise RuntimeError("no Chromium found: run `make services` (Debian: apt-get install chromium)")


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=chromium_path(), args=ARGS, headless=True)


def screenshot(catalog: Path, png: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto((catalog / "index.html").resolve().as_uri())
        page.fill("#search", "order")
        page.screenshot(path=str(png), full_page=False)
        browser.close()


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
