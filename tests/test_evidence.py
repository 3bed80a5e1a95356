"""Why a match fired, in every output: clauses and the snippet's entities stored with each match (a
migration keeps older databases), shown capped in console, Slack and email alerts, in full in webhooks;
``matches list`` cuts long cells with an ellipsis."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from sqlalchemy import create_engine, text

from monitor.listing import cut
from monitor.notify.console import console_line
from monitor.notify.payload import email_bodies, slack_message, webhook_document
from monitor.rules.engine import RuleSet
from monitor.rules.loader import load_folder
from monitor.store.schema import LATEST, migrate
from monitor.types import Document
from tests.conftest import ROOT, run_cli
from tests.feedserver import FeedServer, Route
from tests.helpers import make_config, poll_once
from tests.test_payload import ALERT
from tests.test_store import database, rss  # noqa: F401 (the fixture, on SQLite and PostgreSQL)

DEMO = ROOT / "tests" / "data" / "clauses"
SHOT = "Polish jets shot down a MiG-31 over the sea near Poland on Tuesday."


def test_a_match_names_the_clauses_that_held_and_the_entities_of_its_snippet() -> None:
    rule_set = RuleSet(*load_folder(DEMO))
    far = " ".join(["The weather was calm and the sea was quiet that day."] * 30)
    [match] = rule_set.match(Document(id="d", content=f"{SHOT} {far} A drone from Poland was seen."))
    assert match.clauses == ("shot-down-aircraft", "shoot-down-verb", "aircraft")
    assert match.snippet_entities == ("poland", "mig-31")  # named in the snippet
    assert match.entities == ("poland", "mig-31", "drone-generic")  # named in the document


def test_alerts_show_the_evidence_capped_and_webhooks_carry_it_all() -> None:
    terms = tuple(f"term{i}" for i in range(9))
    alert = replace(ALERT, clauses=("downed-drone",), terms=terms, entities=("estonia", "mig-31", "marco-rubio"),
                    snippet_entities=("mig-31",))
    line = console_line(alert)
    assert "why: downed-drone; terms: term0, term1, term2, term3, term4, term5 +3 more; entities: mig-31]" in line
    assert "marco-rubio" not in line  # named in the document, not in the snippet
    assert "+" not in console_line(replace(alert, terms=terms[:2]))  # nothing was cut
    fields = [e["text"] for e in slack_message(alert)["blocks"][2]["elements"]]
    assert "*Why:* downed-drone" in fields and "*Entities:* mig-31" in fields
    body, html = email_bodies([alert])
    assert "Why: downed-drone\n" in body and "Matched: term0, term1, term2, term3, term4, term5 +3 more" in body
    assert "Entities: mig-31\n" in body and "marco-rubio" not in body
    assert "Why: downed-drone<br>" in html
    matched = webhook_document(alert)["matched"]
    assert matched["clauses"] == ["downed-drone"] and matched["terms"] == list(terms)
    assert matched["entities"] == ["estonia", "mig-31", "marco-rubio"]


def test_clauses_from_poll_to_matches_list_and_the_console(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/f"] = Route(rss(("g1", "Jet shot down", "https://n.example/1", SHOT)))
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{DEMO}"\n[[feeds]]\nname = "f"\nurl = "{feed_server.url("/f")}"\n')
    result = run_cli("poll", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "why: shot-down-aircraft, shoot-down-verb, aircraft; terms:" in result.stdout
    listed = run_cli("matches", "list", "--config", str(config), "--format", "json")
    [row] = json.loads(listed.stdout)
    assert row["clauses"] == ["shot-down-aircraft", "shoot-down-verb", "aircraft"]
    table = run_cli("matches", "list", "--config", str(config)).stdout
    assert "CLAUSES" in table.splitlines()[0] and "shot-down-aircraft, shoot-down-verb, aircraft" in table


def test_the_migration_adds_the_columns_in_place_and_keeps_rows(feed_server: FeedServer, tmp_path: Path,
                                                                database: str) -> None:  # noqa: F811
    feed_server.routes["/f"] = Route(rss(("g1", "Jet shot down", "https://n.example/1", SHOT)))
    poll_once(make_config(tmp_path, {"f": feed_server.url("/f")}, database, rules=DEMO))
    engine = create_engine(database)
    try:
        with engine.begin() as connection:  # back to a version 4 database, with its match
            for column in ("clauses", "snippet_entities"):
                connection.execute(text(f"ALTER TABLE matches DROP COLUMN {column}"))
            connection.execute(text("UPDATE schema_version SET version = 4"))
        assert migrate(engine) == LATEST
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT rule, terms, clauses, snippet_entities FROM matches")).all()
        def listed(value: object) -> object:  # SQLite gives JSON text, PostgreSQL the value
            return json.loads(value) if isinstance(value, str) else value

        assert [(rule, listed(t), listed(c), listed(e)) for rule, t, c, e in rows] == \
            [("downing", ["jet shot down"], [], [])]  # (RSS puts the description in the summary)
    finally:
        engine.dispose()


def test_long_cells_end_with_an_ellipsis_at_a_word() -> None:
    assert cut("violated … airspace, mig 31, russian … jets, estonian airspace", 30) == \
        "violated … airspace, mig 31,…"[:-2] + "…"
    assert cut("short", 30) == "short"
    assert cut("https://n.example/" + "x" * 60, 30) == "https://n.example/xxxxxxxxxxx…"
    assert all(len(cut("word " * n, 30)) <= 30 for n in range(20))
