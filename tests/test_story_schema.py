"""Migration 6 (issue 15): a database migrated from version 5, with its rows, equals one made new."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Connection,
    Engine,
    ForeignKeyConstraint,
    MetaData,
    Table,
    UniqueConstraint,
    create_engine,
    inspect,
    text,
)

from monitor.config import load
from monitor.errors import ConfigError
from monitor.store.schema import LATEST, MIGRATIONS, migrate
from monitor.store.tables import metadata
from tests.feedserver import FeedServer, Route
from tests.helpers import PG_URL, ItemRow, StoryRow, fresh_database, make_config, poll_once, rows
from tests.test_store import VIOLATION, rss

KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set"))]
PATH = Path("/etc/cm/config.toml")
NEW_COLUMNS = {"stories": {"last_seen_at", "publishers", "item_count", "rules", "title", "state"},
               "items": {"publisher", "tier"}, "alerts": {"key", "kind", "thread", "reason", "detail"}}
# What version 7 (retention, tests/test_retention.py) added.
VERSION_7_TABLES = ("pruned_items", "delivery_attempts")
VERSION_7_INDEXES = {"ix_alerts_story_id", "ix_alerts_item_id", "ix_alerts_match_id"}


def version_5() -> MetaData:
    """The tables as version 5 declared them: today's, less what version 6 added, and alerts unique
    on (rule, story_id)."""
    old = MetaData()
    for table in metadata.sorted_tables:
        if table.name in ("story_signatures", *VERSION_7_TABLES):
            continue
        dropped = NEW_COLUMNS.get(table.name, set())
        columns = [column._copy() for column in table.columns if column.name not in dropped]
        uniques = [UniqueConstraint(*[c.name for c in constraint.columns]) for constraint in table.constraints
                   if isinstance(constraint, UniqueConstraint) and not {c.name for c in constraint.columns} & dropped]
        if table.name == "alerts":
            uniques.append(UniqueConstraint("rule", "story_id"))
        foreign = [ForeignKeyConstraint(constraint.column_keys, [e.target_fullname for e in constraint.elements])
                   for constraint in table.foreign_key_constraints]
        copy = Table(table.name, old, *columns, *uniques, *foreign)
        for index in list(copy.indexes):
            if index.name in VERSION_7_INDEXES:
                copy.indexes.discard(index)
    return old


def make_version_5(connection: Connection) -> None:
    version_5().create_all(connection)
    for statement in ("CREATE INDEX ix_matches_rule_created ON matches (rule, created_at)",
                      "CREATE INDEX ix_deliveries_status_created ON deliveries (status, created_at)"):
        connection.execute(text(statement))


def shape(engine: Engine) -> dict[str, Any]:
    """Every table's columns (type, nullability, default), indexes, unique constraints and foreign keys."""
    seen = inspect(engine)
    tables = {}
    for name in sorted(seen.get_table_names()):
        tables[name] = {
            "columns": sorted((c["name"], str(c["type"]), c["nullable"], str(c.get("default")).strip("'"))
                              for c in seen.get_columns(name)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in seen.get_indexes(name)),
            "unique": sorted(tuple(u["column_names"]) for u in seen.get_unique_constraints(name)),
            "foreign": sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                              for f in seen.get_foreign_keys(name))}
    return tables


SEED = [
    "INSERT INTO feeds (name, config_url, url, status, interval, quiet_polls, consecutive_failures) "
    "VALUES ('f', 'u', 'u', 'ok', 300, 0, 0)",
    "INSERT INTO stories (key, first_seen_at) VALUES ('https://n.example/1', '2025-01-01 00:00:00')",
    "INSERT INTO items (feed_id, story_id, guid, url, title, summary, content, tags, published_at, first_seen_at, "
    "updated_at, content_hash, full_text) SELECT f.id, s.id, 'g', 'https://n.example/1', 'Jets', '', '', '[]', "
    "'2025-01-01 00:00:00', '2025-01-01 00:05:00', '2025-01-01 00:05:00', 'h', '' FROM feeds f, stories s",
    "INSERT INTO matches (item_id, rule, severity, terms, entities, snippet, highlights, created_at, clauses, "
    "snippet_entities) SELECT id, 'r', 'high', '[]', '[]', '', '[]', '2025-01-01 00:05:00', '[]', '[]' FROM items",
    "INSERT INTO alerts (id, rule, rule_title, severity, tags, story_id, item_id, match_id, created_at) "
    "SELECT 'a1', 'r', 'R', 'high', '[]', i.story_id, i.id, m.id, '2025-01-01 00:05:00' FROM items i, matches m",
    "INSERT INTO deliveries (alert_id, channel, status, attempts, next_attempt_at, created_at) "
    "VALUES ('a1', 'console', 'delivered', 1, '2025-01-01 00:05:00', '2025-01-01 00:05:00')",
]


@pytest.mark.parametrize("kind", KINDS)
def test_a_version_5_database_migrates_to_the_shape_of_a_new_one_and_keeps_its_rows(kind: str,
                                                                                    tmp_path: Path) -> None:
    assert LATEST == 7

    if kind == "sqlite":
        (tmp_path / "fresh").mkdir()
        (tmp_path / "old").mkdir()
        fresh_url, old_url = f"sqlite:///{tmp_path / 'fresh' / 'm.db'}", f"sqlite:///{tmp_path / 'old' / 'm.db'}"
        fresh = create_engine(fresh_url)
        migrate(fresh)
        expected = shape(fresh)
        fresh.dispose()
    else:
        fresh_database(kind, tmp_path)
        fresh = create_engine(PG_URL)
        migrate(fresh)
        expected = shape(fresh)
        fresh.dispose()
        fresh_database(kind, tmp_path)
        old_url = PG_URL
    old = create_engine(old_url)
    try:
        assert migrate(old, {**{n: MIGRATIONS[n] for n in range(2, 6)}, 1: make_version_5}) == 5
        with old.begin() as connection:
            for statement in SEED:
                connection.execute(text(statement))
        assert migrate(old) == LATEST
        assert shape(old) == expected
        with old.connect() as connection:
            assert connection.execute(text("SELECT key, kind, thread, reason FROM alerts")).all() == [
                ("alert:r:1", "alert", None, "")]
            assert connection.execute(text("SELECT alert_id, status FROM deliveries")).all() == [("a1", "delivered")]
            assert connection.execute(text("SELECT item_count, title, state FROM stories")).all() == [
                (1, "Jets", "open")]
            assert connection.execute(text("SELECT publisher, tier FROM items")).all() == [("", "other")]
            # the old uniqueness is gone, the new one holds
            connection.execute(text(
                "INSERT INTO alerts (id, rule, rule_title, severity, tags, story_id, item_id, match_id, created_at, "
                "key, kind, thread, reason, detail) SELECT 'a2', rule, rule_title, severity, tags, story_id, "
                "item_id, match_id, created_at, 'update:r:1:3', 'update', 'a1', 'now 3 sources', '{}' FROM alerts"))
            connection.commit()
            assert connection.execute(text("SELECT count(*) FROM alerts")).scalar() == 2
    finally:
        old.dispose()



FEED = '[monitor]\nrules = "r"\ndatabase = "sqlite:///m.db"\n[[feeds]]\nname = "f"\nurl = "https://a.example/rss"\n'


def test_feeds_name_their_publisher_and_tier_and_stories_their_window() -> None:
    config = load(FEED + 'publisher = "Reuters"\ntier = "wire"\n[stories]\nwindow = "48h"\n', PATH, {})
    assert (config.feeds[0].publisher, config.feeds[0].tier, config.story_window) == ("reuters", "wire", 48 * 3600)
    plain = load(FEED, PATH, {})
    assert (plain.feeds[0].publisher, plain.feeds[0].tier, plain.story_window) == ("", "other", 96 * 3600)


@pytest.mark.parametrize(("extra", "message"), [
    ('tier = "press"\n', "/etc/cm/config.toml:7: feeds[0].tier: unknown tier 'press'"),
    ('[stories]\nwindow = "soon"\n', "/etc/cm/config.toml:8: stories.window:"),
    ('[stories]\nsize = 3\n', "/etc/cm/config.toml:8: stories.size: unknown key"),
])
def test_a_bad_story_key_is_one_line_naming_file_line_and_key(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(FEED + extra, PATH, {})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.fixture(params=KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request.param, tmp_path)


def test_items_keep_their_publisher_and_tier_and_stories_their_summary(feed_server: FeedServer, tmp_path: Path,
                                                                       database: str) -> None:
    story = "https://n.example/story"
    feed_server.routes["/a"] = Route(rss(("a1", "Jets over Estonia", story + "?utm_source=a", VIOLATION)))
    feed_server.routes["/b"] = Route(rss(("b1", "Jets", "http://www.n.example/story/", VIOLATION)))
    config = make_config(tmp_path, {"a": feed_server.url("/a"), "b": feed_server.url("/b")}, database)
    config = dataclasses.replace(config, feeds=(dataclasses.replace(config.feeds[0], publisher="wire-x", tier="wire"),
                                                config.feeds[1]))
    poll_once(config)
    items = sorted((i.guid, i.publisher, i.tier) for i in rows(config, ItemRow))
    assert items == [("a1", "wire-x", "wire"), ("b1", "n.example", "other")]
    [row] = rows(config, StoryRow)
    assert row.item_count == 2 and row.publishers == ["n.example", "wire-x"]
    assert row.rules == ["airspace-violation"] and row.title in ("Jets over Estonia", "Jets")
    assert row.last_seen_at is not None
