"""Serving the dashboard for a real browser: uvicorn in a thread of its own, and headless chromium.

Playwright cannot download a browser here, so it drives Debian's ``chromium`` package
(``/usr/bin/chromium``; ``.ci/run`` installs it). Used by the browser tests and by
``tests/screenshots.py`` (the README's pictures), so both see the same pages.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monitor.web.server import WebServer

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` on a free loopback port for the duration; its base URL."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            web = WebServer("127.0.0.1:0", app, graceful=1)
            await web.start()
            state["stop"] = asyncio.Event()
            state["loop"] = asyncio.get_running_loop()
            state["port"] = web.port
            ready.set()
            await state["stop"].wait()
            await web.close()

        try:
            asyncio.run(main())
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="dashboard", daemon=True)
    thread.start()
    ready.wait(30)
    assert "port" in state, "the dashboard did not start"
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(15)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
