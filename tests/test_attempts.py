"""Delivery attempt history (issue 21 point 11): every attempt recorded with its time, outcome, error and
the receiver's status code; ``alerts retry`` keeps it; ``alerts show`` prints it. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.feedserver import FeedServer, Route
from tests.helpers import PG_URL, AlertRow, DeliveryRow, fresh_database, make_config, poll_once, rows
from tests.test_delivery import FAST, deliver_until
from tests.test_store import VIOLATION, rss

KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set"))]


@pytest.mark.parametrize("kind", KINDS)
def test_every_attempt_is_kept_through_a_retry_and_shown(kind: str, feed_server: FeedServer, tmp_path: Path) -> None:
    answers = iter([(400, 0.0), (503, 0.0)])
    feed_server.answer = lambda _: next(answers, (200, 0.0))
    feed_server.routes["/f"] = Route(rss(("g1", "Jets over Estonia", "https://n.example/1", VIOLATION)))
    channel = f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{feed_server.url("/hook")}"\n'
    config = make_config(tmp_path, {"f": feed_server.url("/f")}, fresh_database(kind, tmp_path), FAST + channel)
    where = ("--config", str(config.path))
    poll_once(config)  # 400: dead at the first attempt
    [alert] = rows(config, AlertRow)

    def shown() -> dict[str, object]:
        done = run_cli("alerts", "show", alert.id, "--format", "json", *where)
        assert done.returncode == 0, done.stderr
        found: dict[str, object] = json.loads(done.stdout)
        return found

    first = shown()
    assert [(a["attempt"], a["outcome"], a["status_code"], a["channel"]) for a in first["attempts"]] == [  # type: ignore[attr-defined]
        (1, "dead", 400, "hook")]
    assert first["attempts"][0]["error"].startswith("HTTP 400")  # type: ignore[index]
    assert run_cli("alerts", "retry", alert.id, *where).returncode == 0
    # 503 (tried again later), then 200
    deliver_until(config, lambda: len(feed_server.acknowledged) == 1)
    assert [(d.status, d.attempts) for d in rows(config, DeliveryRow)] == [("delivered", 2)]
    after = shown()
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in after["attempts"]] == [  # type: ignore[attr-defined]
        (1, "dead", 400), (1, "retried", None), (1, "retry", 503), (2, "delivered", None)]
    times = [a["at"] for a in after["attempts"]]  # type: ignore[attr-defined]
    assert times == sorted(times)
    assert after["deliveries"] == [{"channel": "hook", "status": "delivered", "attempts": 2, "last_error": None,
                                    "next_attempt_at": after["deliveries"][0]["next_attempt_at"],  # type: ignore[index]
                                    "delivered_at": times[-1]}]
    text = run_cli("alerts", "show", alert.id, *where)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"alert {alert.id}: alert of rule airspace-violation (high) on story ")
    assert lines[1].startswith("item: Jets over Estonia (f) https://n.example/1")
    history = lines[lines.index("attempts:") + 2:]
    assert [line.split()[3:6] for line in history] == [["1", "dead", "400"], ["1", "retried", "-"],
                                                        ["1", "retry", "503"], ["2", "delivered", "-"]]


def test_an_unknown_alert_is_one_line(tmp_path: Path) -> None:
    config = make_config(tmp_path, {})
    done = run_cli("alerts", "show", "nosuch", "--config", str(config.path))
    assert done.returncode == 1
    assert done.stderr.strip() == ("crisis-monitor: alerts show: no alert nosuch in the database "
                                   "(hint: see the ids with: crisis-monitor alerts list)")


