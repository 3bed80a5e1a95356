"""Dashboard page render times over a large store: p50 and p95 per page, in milliseconds.

Fills a store with 100,000 items (in stories of four; a third of the stories matched, their
first match alerted, one delivery in ten dead) over 30 days, then requests every page through
the app in process (httpx's ASGI transport: the app's own work, without a socket), as the
daemon would serve it: middleware, store queries in a worker thread, template rendering.

    python bench/web_bench.py                      # SQLite in a temporary folder
    python bench/web_bench.py --database postgresql+psycopg://postgres@127.0.0.1/bench --fresh
    python bench/web_bench.py --keep /tmp/web.db   # reuse (or make) this SQLite file
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy import text as sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.config import load  # noqa: E402
from monitor.daemon import load_active  # noqa: E402
from monitor.store import views  # noqa: E402
from monitor.store.repo import Store  # noqa: E402
from monitor.store.tables import ItemRow, metadata  # noqa: E402
from monitor.web.app import build_app  # noqa: E402
from monitor.web.context import WebContext  # noqa: E402
from tests.webseed import seed  # noqa: E402

TARGET_MS = 100.0


def pages(story: int) -> list[tuple[str, str, dict[str, str] | None]]:
    text = "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes over the Gulf of Finland."
    return [("GET", "/stories", None), ("GET", "/stories?rule=article-4", None),
            ("GET", "/stories?severity=critical&since=24h", None), ("GET", "/stories?tag=nato-east", None),
            ("GET", "/stories#partial", None), ("GET", f"/stories/{story}", None), ("GET", "/rules", None),
            ("GET", "/rules/airspace-violation", None), ("GET", "/tester", None),
            ("POST", "/tester", {"title": "Jets", "text": text}), ("GET", "/feeds", None),
            ("GET", "/feeds?sort=items&dir=desc", None), ("GET", "/outbox", None), ("GET", "/api/stories", None),
            ("GET", "/api/feeds", None), ("GET", "/api/items?limit=100", None), ("GET", "/api/matches?limit=100", None),
            ("GET", "/api/alerts?status=dead&limit=100", None)]


async def measure(app: object, plan: list[tuple[str, str, dict[str, str] | None]],
                  rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) milliseconds of each request; CPU counts every thread of this process (the
    store runs in a worker thread), so it is what the page costs, whatever else the machine runs."""
    times: dict[str, list[tuple[float, float]]] = {}
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9464") as client:
        await client.get("/stories")  # the CSRF cookie
        for _ in range(rounds):
            for method, path, form in plan:
                url, _, label = path.partition("#")
                headers = {"HX-Request": "true"} if label == "partial" else {}
                data = {**form, "csrf": client.cookies["cm_csrf"]} if form else None
                start, cpu = time.perf_counter(), time.process_time()
                answer = await client.request(method, url, data=data, headers=headers)
                elapsed = ((time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000)
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
                times.setdefault(f"{method} {path}", []).append(elapsed)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="", help="a SQLAlchemy URL (default: SQLite in a temporary folder)")
    parser.add_argument("--keep", default="", help="a SQLite file to reuse, or to fill and keep")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--fresh", action="store_true",
                        help="drop every table of the database first (a bench database!)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="web-bench-"))
    url = args.database or f"sqlite:///{args.keep or folder / 'monitor.db'}"
    toml = f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "{url}"\n' + "".join(
        f'[[feeds]]\nname = "feed-{n:02d}"\nurl = "https://f{n}.example/rss"\n' for n in range(40))
    config = load(toml, folder / "config.toml", {})
    if args.fresh:
        engine = create_engine(url)
        with engine.begin() as connection:
            metadata.drop_all(connection)
            connection.execute(sql("DROP TABLE IF EXISTS schema_version"))
        engine.dispose()
    store = Store(url)
    items = ItemRow.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(items)).scalar_one()
    if stored and stored < args.items:
        print(f"{url.split('@')[-1]} holds {stored:,} items, fewer than {args.items:,}: add --fresh to empty it first")
        return 1
    if not stored:
        started = time.perf_counter()
        seeded = seed(store, datetime.now(UTC), items=args.items, feeds=40)
        print(f"filled {url.split('@')[-1]}: {len(seeded.item_ids):,} items, {len(seeded.story_ids):,} stories, "
              f"{len(seeded.dead_alerts):,} dead deliveries in {time.perf_counter() - started:.0f} s")
    story = views.stories(store, views.StoryFilter(), 1)[0]["id"]
    active = load_active(config)

    async def healthy() -> bool:
        return True

    app = build_app(WebContext(store=store, config=lambda: config, active=lambda: active, healthy=healthy))
    times = asyncio.run(measure(app, pages(story), args.rounds))
    print(f"{'page':44} {'wall p50':>9} {'wall p95':>9} {'CPU p50':>8} {'CPU p95':>8}"
          f"   ms, {args.rounds} requests each")
    worst = worst_cpu = 0.0
    for name, values in times.items():
        wall, cpu = [w for w, _ in values], [c for _, c in values]
        p95, cpu95 = percentile(wall, 0.95), percentile(cpu, 0.95)
        worst, worst_cpu = max(worst, p95), max(worst_cpu, cpu95)
        flag = f"   OVER {TARGET_MS:.0f} ms" if p95 > TARGET_MS else ""
        print(f"{name:44} {statistics.median(wall):9.1f} {p95:9.1f} {statistics.median(cpu):8.1f} {cpu95:8.1f}{flag}")
    print(f"slowest p95: {worst:.1f} ms wall, {worst_cpu:.1f} ms CPU (target < {TARGET_MS:.0f} ms per page)")
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
