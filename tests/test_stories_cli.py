"""``stories list`` and ``stories show`` (issue 15) over a store written by real polls of a local server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main
from tests.feedserver import FeedServer, Route
from tests.helpers import distinct_events, fresh_database, make_config, poll_once
from tests.test_store import DATABASES, VIOLATION, rss

QUIET = "The city council approved a new budget for parks and libraries."


@pytest.fixture(params=DATABASES)
def two_outlets(request: pytest.FixtureRequest, feed_server: FeedServer, tmp_path: Path) -> str:
    """Two feeds that carry one article at one URL (one story, one alert), one matching article only the
    first carries, and one article that matches no rule."""
    shared = ("a1", "Jets over Estonia", "https://news.example.com/estonia", VIOLATION)
    feed_server.routes["/a"] = Route(rss(shared, ("a2", "Jets again <b>&amp; again</b>",
                                                   "https://news.example.com/again", distinct_events(2)[1][1]),
                                         ("a3", "Parks budget", "https://news.example.com/parks", QUIET)))
    feed_server.routes["/b"] = Route(rss(("b1", "Estonia: jets", "https://news.example.com/estonia", VIOLATION)))
    config = make_config(tmp_path, {"a": feed_server.url("/a"), "b": feed_server.url("/b")},
                         fresh_database(request.param, tmp_path))
    poll_once(config)
    return str(config.path)


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_stories_list_json_has_the_matched_stories_with_their_items_publishers_rules_and_alerts(
        two_outlets: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, "stories", "list", "--config", two_outlets, "--format", "json")
    assert isinstance(rows, list) and len(rows) == 2  # the unmatched parks story is not listed
    assert {tuple(sorted(r)) for r in rows} == {("alerts", "first_seen_at", "id", "items", "last_seen_at",
                                                  "publishers", "rules", "title", "url")}
    shared = next(r for r in rows if r["url"] == "https://news.example.com/estonia")
    assert shared["items"] == 2 and shared["publishers"] == ["example.com"]
    assert shared["rules"] == ["airspace-violation"] and shared["alerts"] == {"alert": 1, "update": 0, "surge": 0}
    matches = _json(capsys, "matches", "list", "--config", two_outlets, "--format", "json")
    assert {m["story"] for m in matches} == {r["id"] for r in rows}  # matches list names the same stories
    assert _json(capsys, "stories", "list", "--config", two_outlets, "--format", "json", "--rule",
                 "article-4") == []
    assert len(_json(capsys, "stories", "list", "--config", two_outlets, "--format", "json", "--since", "1h")) == 2


def test_stories_list_text_and_limit(two_outlets: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stories", "list", "--config", two_outlets]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "LAST_SEEN_AT", "ITEMS", "PUBLISHERS", "RULES", "ALERTS", "TITLE"]
    assert len(out) == 3 and any("1 alert" in line and "Jets over Estonia" in line for line in out)
    assert main(["stories", "list", "--config", two_outlets, "--limit", "1", "--format", "json"]) == 0
    out_json, err = capsys.readouterr()
    assert len(json.loads(out_json)) == 1
    assert err == "showing 1 of 2 stories; use --limit N for more, --limit 0 for all\n"


def test_stories_show_items_timeline_and_alerts(two_outlets: str, capsys: pytest.CaptureFixture[str]) -> None:
    listed = _json(capsys, "stories", "list", "--config", two_outlets, "--format", "json")
    assert isinstance(listed, list)
    story_id = next(r["id"] for r in listed if r["items"] == 2)
    shown = _json(capsys, "stories", "show", str(story_id), "--config", two_outlets, "--format", "json")
    assert isinstance(shown, dict) and shown["id"] == story_id
    assert sorted(i["feed"] for i in shown["item_list"]) == ["a", "b"]
    assert all(i["url"] == "https://news.example.com/estonia" and i["publisher"] == "example.com"
               and i["rules"] == ["airspace-violation"] for i in shown["item_list"])
    assert [a["kind"] for a in shown["alert_list"]] == ["alert"]
    events = [e["event"] for e in shown["timeline"]]
    assert sorted(events) == ["alert", "item", "item"] and events[0] == "item"  # the first item, then its alert
    assert [e["at"] for e in shown["timeline"]] == sorted(e["at"] for e in shown["timeline"])
    assert main(["stories", "show", str(story_id), "--config", two_outlets]) == 0
    text = capsys.readouterr().out
    assert f"story {story_id}: " in text and "2 items from 1 publisher" in text
    assert "rules: airspace-violation" in text and "alerts: 1 alert" in text and "timeline:" in text


def test_stories_show_unknown_or_bad_id_is_one_line(two_outlets: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stories", "show", "99999", "--config", two_outlets]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == ("crisis-monitor: stories show: no story 99999 in the database "
                                 "(hint: see the ids with: crisis-monitor stories list)\n")
    assert main(["stories", "show", "abc", "--config", two_outlets]) == 1
    assert "is not a story id" in capsys.readouterr().err
    assert main(["stories", "list", "--config", two_outlets, "--rule", "nope"]) == 1
    assert "--rule: no rule 'nope'" in capsys.readouterr().err
