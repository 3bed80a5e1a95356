"""Golden feeds served over real HTTP: every format, encoding and oddity gives the expected items."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.feedserver import FeedServer, Route
from tests.helpers import items_by_feed, make_config, poll_once

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
EXPECTED = yaml.safe_load((FEEDS / "expected.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = FeedServer().start()
    try:
        for name, spec in EXPECTED.items():
            content_type = spec.get("content_type", "application/xml")
            server.routes[f"/{name}"] = Route((FEEDS / name).read_bytes(), headers={"Content-Type": content_type})
        tmp = tmp_path_factory.mktemp("golden")
        config = make_config(tmp, {name.replace(".", "-"): server.url(f"/{name}") for name in EXPECTED})
        summaries = poll_once(config)
        yield summaries, items_by_feed(config)
    finally:
        server.close()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_feed(ingested, name: str) -> None:  # type: ignore[no-untyped-def]
    summaries, items = ingested
    feed = name.replace(".", "-")
    assert summaries[feed].status == "ok", summaries[feed].error
    got = items.get(feed, [])
    want = EXPECTED[name]["items"]
    assert len(got) == len(want)
    for item, expected in zip(got, want, strict=True):
        if expected["guid"].endswith((":", "#")):
            assert item.guid.startswith(expected["guid"]) and len(item.guid) > len(expected["guid"]) + 8
        else:
            assert item.guid == expected["guid"]
        assert item.title == expected["title"]
        assert item.url == expected["url"]
        assert " ".join(t for t in (item.summary, item.content) if t) == expected["text"]
        if expected["published_at"] == "first_seen":
            assert item.published_at == item.first_seen_at
        else:
            assert _iso(item.published_at) == expected["published_at"]


def test_recovered_oddities_are_warnings_not_errors(ingested) -> None:  # type: ignore[no-untyped-def]
    summaries, _ = ingested
    assert "not an XML media type" in summaries["as-html-xml"].warning
    assert summaries["whitespace-decl-xml"].warning
    assert not summaries["rss20-xml"].warning
    assert summaries["jsonfeed10-json"].warning == "skipped 1 item(s) that are not JSON objects"
    assert not summaries["jsonfeed11-json"].warning
