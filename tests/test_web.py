"""The dashboard app in process (httpx's ASGI transport) over a real seeded store: every page,
escaping of hostile stored text, the token, CSRF, retry, the rule tester, and the JSON API
against the CLI's own ``--format json`` output."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from monitor.config import Config, load
from monitor.daemon import load_active
from monitor.store.repo import Store
from monitor.store.tables import DeliveryRow, ItemRow, MatchRow
from monitor.web.app import build_app
from monitor.web.context import WebContext
from tests.conftest import ROOT, run_cli
from tests.helpers import PG_URL, fresh_database
from tests.webseed import add_story, seed

TOKEN = "correct-horse-battery-staple-42"
HOSTILE = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> Jets & "quotes"'
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set"))]


class Site:
    """A seeded store, the config over it, and a client of the app."""

    def __init__(self, tmp_path: Path, database: str, token: bool = False, items: int = 800,
                 hostile: bool = True) -> None:
        web = '[web]\ntoken = "${WEB_TOKEN}"\n' if token else ""
        feeds = "".join(f'[[feeds]]\nname = "feed-{n:02d}"\nurl = "https://f{n}.example/rss"\n' for n in range(4))
        self.text = f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "{database}"\n{web}{feeds}'
        (tmp_path / "config.toml").write_text(self.text)
        self.config: Config = load(self.text, tmp_path / "config.toml", {"WEB_TOKEN": TOKEN})
        self.path = tmp_path / "config.toml"
        self.store = Store(database)
        self.now = datetime.now(UTC)
        self.seeded = seed(self.store, self.now, items=items, feeds=4)  # 800: 200 stories, 67 matched
        self.hostile_story = hostile and add_story(self.store, self.now - timedelta(minutes=30), HOSTILE,
                                       "javascript:window.__pwned=3", "Jets <b>violated</b> the airspace",
                                       highlights=[(5, 13)])
        active = load_active(self.config)
        self.woken = 0

        async def healthy() -> bool:
            return True

        def wake() -> None:
            self.woken += 1

        self.ctx = WebContext(store=self.store, config=lambda: self.config, active=lambda: active, healthy=healthy,
                              wake_dispatcher=wake)
        self.app = build_app(self.ctx)

    def run(self, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
        """Send requests in order with one client (cookies kept); the responses."""
        async def go() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9464") as client:
                return [await client.request(method, url, **options) for method, url, options in requests]
        return asyncio.run(go())

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.run(("GET", url, options))[0]


@pytest.fixture(params=DATABASES)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    made = Site(tmp_path, fresh_database(request.param, tmp_path))
    yield made
    made.store.close()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Site]:
    made = Site(tmp_path, fresh_database("sqlite", tmp_path), token=True)
    yield made
    made.store.close()


def test_every_page_renders_the_seeded_data(site: Site) -> None:
    stories = site.get("/stories")
    assert stories.status_code == 200 and stories.text.count('class="story"') == 50
    assert "Three Russian MiG-31 jets violated Estonian airspace" in stories.text
    assert "<mark>" in stories.text and "publishers" in stories.text
    story_id = site.seeded.story_ids[0]
    story = site.get(f"/stories/{story_id}")
    assert story.status_code == 200 and "Items, by time" in story.text and "ops-webhook" in story.text
    assert '<td class="kind kind-alert">alert</td>' in story.text  # each alert sent shows its kind
    assert '<span class="alerts">1 alert</span>' in stories.text
    rules = site.get("/rules")
    assert rules.status_code == 200 and "<svg" in rules.text and "airspace-violation" in rules.text
    assert "pass " in rules.text  # the shipped rules' examples pass
    rule = site.get("/rules/airspace-violation")
    assert rule.status_code == 200 and "Recent matches" in rule.text and "NEAR" in rule.text
    feeds = site.get("/feeds")
    assert feeds.status_code == 200
    order = [line.split('data-feed="')[1].split('"')[0] for line in feeds.text.splitlines() if "data-feed=" in line]
    assert order[0] == "feed-03" and sorted(order[1:]) == order[1:]  # the failing feed first
    outbox = site.get("/outbox")
    assert outbox.status_code == 200 and outbox.text.count('class="delivery"') == len(site.seeded.dead_alerts)
    assert site.get("/tester").status_code == 200
    assert "4 items" in stories.text and ">200</td>" in feeds.text  # 800 items over 4 feeds
    for text in (stories.text, story.text, rules.text, rule.text, feeds.text, outbox.text):
        assert "built-in method" not in text and "object at 0x" not in text  # no dict method rendered by mistake
    assert site.get("/stories/999999").status_code == 404 and site.get("/rules/nope").status_code == 404


def test_stories_filter_by_rule_severity_tag_and_time(site: Site) -> None:
    only = site.get("/stories?rule=article-4")
    assert only.status_code == 200 and 'href="/rules/article-4"' in only.text
    assert 'class="rule" href="/rules/shoot-down"' not in only.text
    critical = site.get("/stories?severity=critical")
    assert 'class="rule" href="/rules/airspace-violation"' not in critical.text
    assert 'class="rule" href="/rules/article-4"' in critical.text
    recent = site.get("/stories?since=1h")
    assert recent.text.count('class="story"') < 50 and "Jets &amp;" in recent.text
    bad = site.get("/stories?since=soon")
    assert bad.status_code == 400 and "since: " in bad.text and "Traceback" not in bad.text
    partial = site.get("/stories?rule=article-4", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.text and 'class="story"' in partial.text


def test_hostile_stored_text_is_escaped_and_not_linked(site: Site) -> None:
    for page in ("/stories", f"/stories/{site.hostile_story}"):
        text = site.get(page).text
        assert "<img src=x" not in text and "<script>window" not in text
        assert "&lt;img src=x onerror=&#34;window.__pwned=1&#34;&gt;" in text
        assert "javascript:" not in text
        assert "<b>" not in text and "&lt;b&gt;" in text  # the snippet's own <b> is text, not markup


def test_security_headers(site: Site) -> None:
    answer = site.get("/stories")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in answer.text and " on" + "click=" not in answer.text


def test_health_and_metrics_stay_as_they_were(site: Site) -> None:
    health = site.get("/healthz")
    assert health.status_code == 200 and health.text == "ok\n"
    metrics = site.get("/metrics")
    assert metrics.status_code == 200 and "crisis_monitor_outbox_pending" in metrics.text


def test_the_token_guards_everything_but_healthz(guarded: Site) -> None:
    assert guarded.get("/healthz").status_code == 200
    for path in ("/api/feeds", "/metrics"):
        refused = guarded.get(path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    page = guarded.get("/stories", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/stories"
    assert guarded.get("/api/feeds", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    ok = guarded.get("/api/feeds", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and [r["name"] for r in ok.json()] == ["feed-00", "feed-01", "feed-02", "feed-03"]
    login, wrong, _, after = guarded.run(
        ("GET", "/login", {}),
        ("POST", "/login", {"data": {"token": "nope", "next": "/feeds"}}),  # no CSRF field: refused first
        ("GET", "/login", {}), ("GET", "/feeds", {"headers": {"Accept": "text/html"}}))
    assert login.status_code == 200 and wrong.status_code == 403 and after.status_code == 303


def test_login_sets_a_cookie_that_opens_the_pages(guarded: Site) -> None:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=guarded.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9464") as client:
            await client.get("/login")
            csrf = client.cookies["cm_csrf"]
            wrong = await client.post("/login", data={"csrf": csrf, "token": "not-the-token", "next": "/feeds"})
            right = await client.post("/login", data={"csrf": csrf, "token": TOKEN, "next": "/feeds"})
            assert TOKEN not in str(client.cookies.get("cm_session"))
            return [wrong, right, await client.get("/feeds")]

    wrong, right, feeds = asyncio.run(go())
    assert wrong.status_code == 401 and "not the token" in wrong.text
    assert right.status_code == 303 and right.headers["location"] == "/feeds"
    assert feeds.status_code == 200 and 'data-feed="feed-03"' in feeds.text


def _count(store: Store, table: Any, *where: Any) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_retry_needs_csrf_and_moves_a_dead_delivery_to_pending(site: Site) -> None:
    dead_id = site.seeded.dead_alerts[0]
    deliveries = DeliveryRow.__table__  # type: ignore[attr-defined]
    refused, = site.run(("POST", "/outbox/retry", {"data": {"alert_id": dead_id}}))
    assert refused.status_code == 403
    _, cross, done = site.run(
        ("GET", "/outbox", {}),
        ("POST", "/outbox/retry", {"data": {"alert_id": dead_id, "csrf": "x"}, "headers": {"Origin": "https://evil"}}),
        ("POST", "/outbox/retry", {"data": {"alert_id": dead_id}}))
    assert cross.status_code == 403 and done.status_code == 403  # the form must carry the cookie's value
    assert _count(site.store, deliveries, deliveries.c.alert_id == dead_id, deliveries.c.status == "dead") == 1

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=site.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9464") as client:
            await client.get("/outbox")
            return await client.post("/outbox/retry", data={"alert_id": dead_id, "csrf": client.cookies["cm_csrf"]})

    answer = asyncio.run(go())
    assert answer.status_code == 303 and answer.headers["location"] == "/outbox?retried=1"
    assert _count(site.store, deliveries, deliveries.c.alert_id == dead_id, deliveries.c.status == "pending") == 1
    assert _count(site.store, deliveries, deliveries.c.status == "dead") == len(site.seeded.dead_alerts) - 1
    assert site.woken == 1


def test_the_rule_tester_runs_the_rules_and_writes_nothing(site: Site) -> None:
    items = ItemRow.__table__  # type: ignore[attr-defined]
    matches = MatchRow.__table__  # type: ignore[attr-defined]
    before = (_count(site.store, items), _count(site.store, matches))

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=site.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9464") as client:
            await client.get("/tester")
            csrf = client.cookies["cm_csrf"]
            fired = await client.post("/tester", headers={"HX-Request": "true"}, data={
                "csrf": csrf, "title": "<b>Jets</b>",
                "text": "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes."})
            quiet = await client.post("/tester", data={"csrf": csrf, "title": "", "text": "Fog closed the airport."})
            return [fired, quiet]

    fired, quiet = asyncio.run(go())
    assert fired.status_code == 200 and "<html" not in fired.text
    assert 'data-rule="airspace-violation"' in fired.text and "<mark>" in fired.text
    marked = re.findall(r"<mark>(.*?)</mark>", fired.text)
    assert marked and all(piece in "Three Russian MiG-31 jets violated Estonian airspace" for piece in marked)
    assert any("violated" in piece for piece in marked)
    assert quiet.status_code == 200 and "No rule fired." in quiet.text and "<html" in quiet.text
    assert (_count(site.store, items), _count(site.store, matches)) == before


def test_the_api_has_the_cli_json_fields_and_values(site: Site) -> None:
    for api, cli in (("/api/feeds", ["feeds", "status"]), ("/api/items?limit=1000", ["items", "list"]),
                     ("/api/matches", ["matches", "list"]), ("/api/alerts", ["alerts", "list"])):
        served = site.get(api)
        assert served.status_code == 200, api
        result = run_cli(*cli, "--config", str(site.path), "--format", "json")
        assert result.returncode == 0, result.stderr
        assert served.json() == json.loads(result.stdout), api
    stories = site.get("/api/stories?since=1h").json()
    assert stories[0]["id"] == site.hostile_story and stories[0]["title"] == HOSTILE
    story_id = site.seeded.story_ids[0]
    result = run_cli("stories", "show", str(story_id), "--config", str(site.path), "--format", "json")
    assert result.returncode == 0, result.stderr
    served = site.get(f"/api/stories/{story_id}")
    assert served.status_code == 200 and served.json() == json.loads(result.stdout)  # stories show's JSON
    assert set(served.json()["alerts"]) == {"alert", "update", "surge"}
    assert all(a["kind"] == "alert" for a in served.json()["alert_list"])
    missing = site.get("/api/stories/999999")
    assert missing.status_code == 404 and missing.json() == {"error": "no story 999999"}
    bad = site.get("/api/items?since=never")
    assert bad.status_code == 400 and bad.json()["error"].startswith("since: 'never'")
    assert site.get("/api/items?limit=0").status_code == 400


def test_config_token_must_come_from_the_environment(tmp_path: Path) -> None:
    from monitor.errors import ConfigError

    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError, match=r"config.toml:2: web.token: the token must come from the environment"):
        load('[web]\ntoken = "plain-text-token-in-the-file"\n', path, {})
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load('[web]\ntoken = "${T}"\n', path, {"T": "short"})
    with pytest.raises(ConfigError, match=r"web\.listen: 'localhost' is not host:port"):
        load('[web]\nlisten = "localhost"\n', path, {})
    config = load('[web]\nlisten = ":0"\ntoken = "${T}"\n', path, {"T": TOKEN})
    assert config.web_token is not None and config.web_token.reveal() == TOKEN
    assert TOKEN not in repr(config) and TOKEN not in str(config.web_token)


def test_present_helpers() -> None:
    from monitor.web.present import bars, last_days, safe_url, segments, sort_feeds

    assert segments("abcdef", [(1, 3), (2, 4), (5, 99)]) == [("a", False), ("bc", True), ("d", True), ("e", False),
                                                             ("f", True)]
    assert segments("abc", []) == [("abc", False)]
    assert safe_url("javascript:alert(1)") is None and safe_url(" JAVASCRIPT:x") is None
    assert safe_url("data:text/html,x") is None and safe_url("https://a.example/x") == "https://a.example/x"
    days = last_days(datetime(2026, 3, 2, 23, 59, tzinfo=UTC), 3)
    assert days == ["2026-02-28", "2026-03-01", "2026-03-02"]
    drawn = bars({"2026-03-01": 10, "2026-03-02": 1}, days, 30, 20)
    assert [b.height for b in drawn] == [0.0, 20.0, 2.0] and drawn[1].y == 0.0 and drawn[2].x == 20.0
    rows = [{"name": n, "status": s, "consecutive_failures": f, "items": i}
            for n, s, f, i in (("a", "ok", 0, 5), ("b", "error", 2, 1), ("c", "error", 7, 3), ("d", "stale", 0, 9))]
    assert [r["name"] for r in sort_feeds(rows, "health")] == ["c", "b", "d", "a"]
    assert [r["name"] for r in sort_feeds(rows, "items", descending=True)] == ["d", "a", "c", "b"]


def test_rule_days_and_the_merged_story_order_agree_with_plain_python(site: Site) -> None:
    from monitor.store import views
    from monitor.web.present import day_bounds, last_days

    days = last_days(site.now, 30)
    got = views.rule_days(site.store, ["article-4", "shoot-down", "war-threat"], day_bounds(days))
    for rule in ("article-4", "shoot-down", "war-threat"):
        stamps = [m["created_at"][:10] for m in site.store.matches(rule=rule, limit=100_000)]
        assert got[rule] == [stamps.count(day) for day in days], rule
    assert sum(got["article-4"]) > 0 and sum(got["war-threat"]) == 0
    every = views.stories(site.store, views.StoryFilter(), limit=1000)
    two = views.stories(site.store, views.StoryFilter(rules={"article-4", "shoot-down"}), limit=1000)
    assert [s["id"] for s in two] == [s["id"] for s in every if {"article-4", "shoot-down"} & set(s["rules"])]
    assert len(views.stories(site.store, views.StoryFilter(rules={"article-4", "shoot-down"}), limit=7)) == 7
    tagged = site.get("/stories?tag=article-4")  # the tag only article-4 carries
    assert tagged.status_code == 200 and 'class="rule" href="/rules/shoot-down"' not in tagged.text
    assert 'class="rule" href="/rules/article-4"' in tagged.text


@pytest.mark.parametrize("kind", DATABASES)
def test_the_dashboard_index_migration_upgrades_a_store_in_place(kind: str, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from sqlalchemy import create_engine, inspect

    from monitor.store.schema import MIGRATIONS, migrate

    url = fresh_database(kind, tmp_path)
    step = next(n for n, f in MIGRATIONS.items() if f.__name__ == "_dashboard_indexes")
    engine = create_engine(url)
    try:
        assert migrate(engine, {n: f for n, f in MIGRATIONS.items() if n < step}) == step - 1
        with engine.begin() as connection:  # as the version before left it: without these indexes
            for index in ("ix_matches_rule_created", "ix_deliveries_status_created"):
                connection.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
        seeded = seed(SimpleNamespace(engine=engine), datetime.now(UTC), items=40, feeds=2)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    store = Store(url)  # opening it migrates it
    try:
        assert sorted(i["id"] for i in store.items(limit=1000)) == sorted(seeded.item_ids)
        assert len(store.alerts("dead")) == len(seeded.dead_alerts)
        indexes = {i["name"] for t in ("matches", "deliveries") for i in inspect(store.engine).get_indexes(t)}
        assert {"ix_matches_rule_created", "ix_deliveries_status_created"} <= indexes
    finally:
        store.close()
