"""The dashboard in a real headless browser (Playwright driving Debian's chromium): pages with seeded
data on SQLite and PostgreSQL, hostile feed text inert, the rule tester, the token, retry, live
updates, and every page of a running daemon (a subprocess) with the feed it polled."""

from __future__ import annotations

import shutil
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from monitor.store.tables import DeliveryRow
from tests.browser import CHROMIUM, chromium, served
from tests.conftest import ROOT
from tests.feedserver import FeedServer, Route
from tests.helpers import fresh_database
from tests.test_daemon import Daemon
from tests.test_store import VIOLATION, rss
from tests.test_web import DATABASES, TOKEN, Site
from tests.webseed import add_story

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed (apt-get install chromium)")
PAGES = ["/stories", "/rules", "/rules/airspace-violation", "/tester", "/feeds", "/outbox"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class Tab:
    """A page that records console errors, dialogs and failed requests, which no dashboard page may cause."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    opened = Tab(browser)
    yield opened
    opened.close()


def stored(site: Site) -> tuple[int, int]:
    """Items and matches in the store (the tester must add none)."""
    return len(site.store.items(limit=100_000)), len(site.store.matches(limit=100_000))


@pytest.fixture(params=DATABASES)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    made = Site(tmp_path, fresh_database(request.param, tmp_path))
    yield made
    made.store.close()


def test_pages_load_with_seeded_data(site: Site, tab: Tab) -> None:
    page = tab.page
    with served(site.app) as base:
        page.goto(f"{base}/")
        assert page.url == f"{base}/stories"
        assert page.locator("li.story").count() == 50
        assert page.locator("li.story mark").count() > 0
        page.select_option("select[name=rule]", "article-4")
        page.click("form.filters button")
        page.wait_for_url("**/stories?rule=article-4*")
        rules = set(page.locator("li.story a.rule").all_inner_texts())
        assert rules and rules <= {"article-4"}
        page.locator("li.story a.story-title").first.click()
        # A click returns before the next page has loaded: wait for its heading (fails on the timeout if it never
        # comes), not is_visible() at once, which raced the navigation on a loaded machine.
        heading = page.locator("h2", has_text="Items, by time")
        heading.wait_for()
        assert heading.is_visible()
        for path in PAGES:
            answer = page.goto(f"{base}{path}")
            assert answer is not None and answer.status == 200, path
        page.goto(f"{base}/rules")
        assert page.locator("table.rules svg.chart").count() == page.locator("table.rules tbody tr").count() > 0
        page.goto(f"{base}/feeds")
        assert page.locator("tr.feed").first.get_attribute("data-feed") == "feed-03"
        page.click("th a:has-text('items')")
        page.wait_for_url("**/feeds?sort=items")
    assert tab.errors == [] and tab.dialogs == []  # the CSP was never violated, nothing failed


def test_hostile_feed_text_renders_inert(site: Site, tab: Tab) -> None:
    page = tab.page
    with served(site.app) as base:
        listed = f"li.story[data-story='{site.hostile_story}'] a.story-title"
        for path, where in (("/stories", listed), (f"/stories/{site.hostile_story}", "h1"),
                            ("/stories?since=1h", listed)):
            page.goto(f"{base}{path}")
            title = page.locator(where)
            assert '<img src=x onerror="window.__pwned=1">' in title.inner_text()
            assert "<script>window.__pwned=2</script>" in title.inner_text()
            assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
            assert page.evaluate("typeof window.__pwned") == "undefined"
            links = page.locator("main a").evaluate_all("links => links.map(a => a.getAttribute('href') || '')")
            assert not [href for href in links if href.lower().lstrip().startswith("javascript")]
        page.wait_for_timeout(5500)  # a live refresh swapped the list in: still inert
        assert page.evaluate("typeof window.__pwned") == "undefined"
    assert tab.dialogs == [] and tab.errors == []


def test_rule_tester_highlights_terms_and_stores_nothing(site: Site, tab: Tab) -> None:
    page = tab.page
    before = stored(site)
    with served(site.app) as base:
        page.goto(f"{base}/tester")
        page.fill("input[name=title]", "<img src=x onerror=alert(1)>")
        page.fill("textarea[name=text]", "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes.")
        page.click("form.tester button")
        fired = page.locator("article.fired[data-rule='airspace-violation']")
        fired.wait_for()
        marks = fired.locator("mark").all_inner_texts()
        assert marks and any("violated" in m for m in marks)
        assert page.url == f"{base}/tester"  # htmx posted it; the page stayed
        page.fill("input[name=title]", "")
        page.fill("textarea[name=text]", "Fog closed the airport for the morning.")
        page.click("form.tester button")
        page.locator("#results .empty", has_text="No rule fired.").wait_for()
    assert stored(site) == before
    assert tab.dialogs == [] and tab.errors == []


def test_the_token_is_required_when_set(tmp_path: Path, tab: Tab) -> None:
    guarded = Site(tmp_path, fresh_database("sqlite", tmp_path), token=True)
    page = tab.page
    try:
        with served(guarded.app) as base:
            page.goto(f"{base}/feeds")
            assert page.url == f"{base}/login?next=/feeds"
            assert page.locator("tr.feed").count() == 0
            page.fill("input[name=token]", "not-the-token-at-all")
            page.click("form button")
            refused = page.locator(".error", has_text="not the token")
            refused.wait_for()
            assert refused.is_visible()
            page.fill("input[name=token]", TOKEN)
            page.click("form button")
            page.wait_for_url(f"{base}/feeds")
            assert page.locator("tr.feed").count() == 4
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as answer:
                assert answer.read() == b"ok\n"
    finally:
        guarded.store.close()


def test_retry_moves_a_dead_delivery_to_pending(site: Site, tab: Tab) -> None:
    page = tab.page
    first = site.seeded.dead_alerts[0]
    with served(site.app) as base:
        page.goto(f"{base}/outbox")
        assert page.locator("tr.delivery").count() == len(site.seeded.dead_alerts)
        page.locator(f"tr.delivery[data-alert='{first}'] button").click()
        page.locator(".notice", has_text="1 deliveries are pending again").wait_for()
        assert page.locator(f"tr.delivery[data-alert='{first}']").count() == 1  # now under "Pending"
    deliveries = DeliveryRow.__table__  # type: ignore[attr-defined]
    with site.store.engine.connect() as connection:
        status = connection.execute(select(deliveries.c.status).where(deliveries.c.alert_id == first)).scalar_one()
    assert status == "pending" and site.woken == 1


def test_live_update_shows_a_new_story_without_reload(site: Site, tab: Tab) -> None:
    page = tab.page
    with served(site.app) as base:
        page.goto(f"{base}/stories")
        page.evaluate("window.__sameDocument = 'yes'")
        title = f"Fresh incursion report {time.monotonic_ns()}"
        assert page.locator("li.story", has_text=title).count() == 0
        add_story(site.store, datetime.now(UTC), title, "https://fresh.example/1", "jets violated the airspace")
        page.locator("li.story", has_text=title).wait_for(timeout=20_000)
        assert page.evaluate("window.__sameDocument") == "yes"
        assert page.locator("li.story").first.inner_text().startswith(title)


@pytest.mark.parametrize("kind", DATABASES)
def test_every_page_of_a_running_daemon(kind: str, feed_server: FeedServer, tmp_path: Path, tab: Tab) -> None:
    from tests.test_delivery import free_port

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    feed_server.routes["/f"] = Route(rss(("g1", "Jets over Estonia &amp;lt;img src=x onerror=alert(1)&amp;gt;",
                                          "https://n.example/1", VIOLATION)))
    port = free_port()
    database = fresh_database(kind, tmp_path) if kind == "postgresql" else f"sqlite:///{tmp_path / 'm.db'}"
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "rules"\nmin_interval = "1s"\ndatabase = "{database}"\nstop_timeout = "2s"\n'
                      f'[web]\nlisten = "127.0.0.1:{port}"\n'
                      f'[[feeds]]\nname = "f"\nurl = "{feed_server.url("/f")}"\ninterval = "1s"\n')
    daemon = Daemon(config)
    page = tab.page
    base = f"http://127.0.0.1:{port}"
    try:
        daemon.wait_for("ALERT HIGH airspace-violation: Jets over Estonia")
        page.goto(f"{base}/stories")
        page.locator("li.story", has_text="Jets over Estonia").wait_for()
        page.locator("li.story a.story-title").first.click()
        page.locator("td", has_text="console").first.wait_for()  # the alert's delivery to the console channel
        for path in PAGES:
            answer = page.goto(f"{base}{path}")
            assert answer is not None and answer.status == 200, path
        page.goto(f"{base}/feeds")
        assert page.locator("tr.feed[data-feed='f'] .status").inner_text() in ("ok", "not_modified")
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as answer:
            assert answer.status == 200 and answer.read() == b"ok\n"
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as answer:
            assert "crisis_monitor_items_total 1.0" in answer.read().decode()
        assert page.evaluate("typeof window.__pwned") == "undefined" and tab.dialogs == []
    finally:
        started = time.monotonic()  # the browser still holds keep-alive connections to it
        assert daemon.stop() == 0
        assert time.monotonic() - started < 8  # stop_timeout 2 s: the web server did not hold the stop up
    assert tab.errors == []
