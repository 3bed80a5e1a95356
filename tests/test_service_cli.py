"""The service commands as users run them: poll, feeds, items, matches, alerts, with --format json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.feedserver import FeedServer, Route
from tests.test_store import VIOLATION, rss


@pytest.fixture
def polled(feed_server: FeedServer, tmp_path: Path) -> Path:
    feed_server.routes["/f"] = Route(rss(("g1", "Jets <b>over</b> Estonia", "https://n.example/1", VIOLATION)))
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{Path(__file__).resolve().parent.parent / "rules"}"\n'
                      f'[[feeds]]\nname = "f"\nurl = "{feed_server.url("/f")}"\n'
                      f'[[feeds]]\nname = "down"\nurl = "http://127.0.0.1:9/nothing"\n')
    result = run_cli("poll", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "2 feeds polled (1 failing): 1 new item, 1 match, 1 alert" in result.stdout
    assert "ALERT HIGH airspace-violation: Jets over Estonia" in result.stdout
    return config


def json_of(*args: str) -> list[dict[str, object]]:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def test_feeds_status_json(polled: Path) -> None:
    data = {row["name"]: row for row in json_of("feeds", "status", "--config", str(polled), "--format", "json")}
    fields = {"name", "url", "status", "items", "last_polled_at", "next_poll_at", "last_error",
              "consecutive_failures"}
    assert all(set(row) == fields for row in data.values())
    assert data["f"]["status"] == "ok" and data["f"]["items"] == 1 and data["f"]["consecutive_failures"] == 0
    assert data["down"]["status"] == "error" and "cannot connect" in str(data["down"]["last_error"])


def test_items_list_json(polled: Path) -> None:
    data = json_of("items", "list", "--config", str(polled), "--format", "json", "--since", "1h")
    assert [set(row) for row in data] == [{"id", "feed", "title", "url", "published_at", "first_seen_at",
                                           "full_text_status", "full_text_error", "full_text_chars"}]
    assert data[0]["title"] == "Jets over Estonia" and data[0]["url"] == "https://n.example/1"
    assert json_of("items", "list", "--config", str(polled), "--format", "json", "--feed", "down") == []


def test_matches_list_json(polled: Path) -> None:
    data = json_of("matches", "list", "--config", str(polled), "--format", "json", "--rule", "airspace-violation")
    assert len(data) == 1
    assert {"rule", "severity", "item", "terms", "entities", "created_at"} <= set(data[0])
    assert data[0]["item"] == {"id": 1, "feed": "f", "title": "Jets over Estonia", "url": "https://n.example/1"}
    assert "violated … airspace" in data[0]["terms"] and "estonia" in data[0]["entities"]
    assert isinstance(data[0]["story"], int)  # the story the item joined (issue 15)


def test_alerts_list_json(polled: Path) -> None:
    data = json_of("alerts", "list", "--config", str(polled), "--format", "json")
    assert [set(row) for row in data] == [{"id", "rule", "story", "item_url", "channel", "status", "attempts",
                                           "last_error", "created_at"}]
    assert data[0]["status"] == "delivered" and data[0]["channel"] == "console"
    matched = json_of("matches", "list", "--config", str(polled), "--format", "json", "--rule", "airspace-violation")
    assert data[0]["story"] == matched[0]["story"]


def test_text_listings(polled: Path) -> None:
    result = run_cli("feeds", "status", "--config", str(polled))
    assert result.returncode == 0 and result.stdout.splitlines()[0].split()[:3] == ["NAME", "STATUS", "ITEMS"]
    assert "Jets over Estonia" in run_cli("items", "list", "--config", str(polled)).stdout


def test_feeds_import_and_export(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[feeds]]\nname = "nato"\nurl = "https://www.nato.int/rss.xml"\n')
    opml = tmp_path / "mine.opml"
    opml.write_text('<opml version="2.0"><body><outline text="NATO" xmlUrl="https://www.nato.int/rss.xml"/>'
                    '<outline text="ERR" xmlUrl="https://news.err.ee/rss"/></body></opml>')
    result = run_cli("feeds", "import", str(opml), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "added err: https://news.err.ee/rss" in result.stdout and "1 feed added" in result.stdout
    names = [row["name"] for row in json_of("feeds", "list", "--config", str(config), "--format", "json")]
    assert names == ["nato", "err"]
    exported = run_cli("feeds", "export", "--config", str(config)).stdout
    assert exported.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert 'xmlUrl="https://news.err.ee/rss"' in exported


def test_unknown_feed_and_bad_since_are_one_line_errors(polled: Path) -> None:
    result = run_cli("poll", "--config", str(polled), "--feed", "nope")
    assert result.returncode == 1 and "no feed named 'nope'" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("items", "list", "--config", str(polled), "--since", "yesterday")
    assert result.returncode == 1 and "--since: 'yesterday' is not a duration" in result.stderr
