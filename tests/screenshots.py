"""The README's screenshots of the dashboard, taken by the browser tests' own chromium and fixtures.

    python -m tests.screenshots        # writes docs/dashboard-stories.png and docs/dashboard-tester.png

The store is the tests' seeded one (tests/webseed.py) plus a few fresh stories, so the pictures
show what the browser tests check.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.browser import chromium, served
from tests.conftest import ROOT
from tests.test_web import Site
from tests.webseed import add_story

DOCS = ROOT / "docs"
FRESH = [("Estonia summons Russian envoy after MiG-31 jets violated its airspace over Vaindloo",
          "https://news.err.ee/1609812345/estonia-summons-russian-envoy",
          "Three Russian MiG-31 jets violated Estonian airspace over Vaindloo island for 12 minutes on Friday.",
          ["MiG-31 jets", "violated Estonian airspace"]),
         ("Poland invokes Article 4 after drones crossed into its territory overnight",
          "https://notesfrompoland.com/2026/12/02/poland-invokes-article-4",
          "Poland has requested consultations under Article 4 of the North Atlantic Treaty.",
          ["Article 4", "North Atlantic Treaty"])]
TESTER_TEXT = ("Two Russian Su-30 fighters violated Finnish airspace near Porvoo on Tuesday morning, the defence "
               "ministry said; Finnish F/A-18 Hornets were scrambled to intercept them.")


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        site = Site(Path(folder), f"sqlite:///{Path(folder) / 'monitor.db'}", items=400, hostile=False)
        now = datetime.now(UTC)
        for n, (title, url, snippet, terms) in enumerate(FRESH):
            spans = [(snippet.index(t), snippet.index(t) + len(t)) for t in terms]
            add_story(site.store, now - timedelta(minutes=3 * n), title, url, snippet, feed=f"feed-0{n}",
                      rule="article-4" if "Article 4" in title else "airspace-violation",
                      severity="critical" if "Article 4" in title else "high", highlights=spans,
                      terms=[t.lower() for t in terms])
        with served(site.app) as base, chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/stories")
            page.screenshot(path=str(DOCS / "dashboard-stories.png"))
            page.goto(f"{base}/tester")
            page.fill("input[name=title]", "Finnish jets scrambled")
            page.fill("textarea[name=text]", TESTER_TEXT)
            page.click("form.tester button")
            page.locator("article.fired").first.wait_for()
            page.screenshot(path=str(DOCS / "dashboard-tester.png"), full_page=True)
        site.store.close()
    print(f"wrote {DOCS / 'dashboard-stories.png'} and {DOCS / 'dashboard-tester.png'}")


if __name__ == "__main__":
    main()
