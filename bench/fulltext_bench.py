"""Full text: what fetching and extracting each new item's article page costs, on 127.0.0.1.

Feeds of teaser items whose links are article pages (~5.6 KB of HTML each: navigation, an
article of eight paragraphs, a sidebar, a footer) are served by ingest_bench's server in a
separate process. The same first cycle is polled twice on fresh databases, with
``full_text = false`` and ``full_text = true`` (robots.txt read once per site, pages within
``per_host``, text extracted in the parse workers). Reports:
- wall time per new item with and without full text, and the difference (the cost per item);
- the mean time of the full-text stage per feed;
- trafilatura's CPU time to extract one page, in this process (best of 20).
Run: python bench/fulltext_bench.py [--feeds 10] [--items 20] [--per-host 4]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest_bench import ROOT, WORDS, free_port, wait_for_port

from monitor.config import load
from monitor.daemon import Runtime
from monitor.feeds.extract import main_text
from monitor.pipeline import PollSummary

PARAGRAPH = ("Three Russian MiG-31 jets violated Estonian airspace for 12 minutes on Friday, the ministry said, "
             "and NATO jets on air policing duty were scrambled to intercept them over the Gulf of Finland.")


def page(rng: random.Random, number: int) -> str:
    paragraphs = "".join(f"<p>{' '.join(rng.choices(WORDS, k=60))}.</p>" for _ in range(7))
    links = "".join(f'<li><a href="/story/{n}">{" ".join(rng.choices(WORDS, k=6))}</a></li>' for n in range(15))
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Story {number}</title>'
            f'<link rel="stylesheet" href="/s.css"></head><body><header><nav><ul>{links}</ul></nav></header>'
            f"<main><article><h1>Story {number}</h1><p class=\"byline\">By the desk</p><p>{PARAGRAPH}</p>"
            f"{paragraphs}</article></main><aside><h2>Most read</h2><ul>{links}</ul></aside>"
            f"<footer><p>Copyright 2025 Example News.</p></footer><script>var x = {number};</script></body></html>")


def write_site(folder: Path, port: int, feeds: int, items: int) -> float:
    rng = random.Random(20250919)
    sizes = []
    for feed in range(feeds + 2):  # two to warm up with
        entries = []
        for number in range(items):
            html = page(rng, number)
            sizes.append(len(html))
            (folder / f"a{feed}-{number}.html").write_text(html)
            entries.append(f"<item><title>Story {feed}-{number}</title><guid>f{feed}-{number}</guid>"
                           f"<link>http://127.0.0.1:{port}/a{feed}-{number}.html</link>"
                           f"<description>Read the story on our site.</description></item>")
        (folder / f"feed{feed}.xml").write_text(f'<?xml version="1.0"?><rss version="2.0"><channel><title>F{feed}'
                                                f"</title>{''.join(entries)}</channel></rss>")
    (folder / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    return sum(sizes) / len(sizes)


def config_text(port: int, feeds: int, database: str, full_text: bool, per_host: int) -> str:
    lines = ["[monitor]", f'rules = "{ROOT / "rules"}"', f'database = "{database}"', 'max_item_age = "30d"',
             f"full_text = {'true' if full_text else 'false'}", "[http]", f"per_host = {per_host}",
             "[[channels]]", 'name = "quiet"', 'type = "console"', 'min_severity = "critical"']
    for feed in range(feeds + 2):
        lines += ["[[feeds]]", f'name = "feed{feed}"', f'url = "http://127.0.0.1:{port}/feed{feed}.xml"']
    return "\n".join(lines) + "\n"


async def cycle(text: str, path: Path) -> tuple[float, list[PollSummary]]:
    """The first cycle of every feed but the two warm-up ones, polled first (so the workers have
    started, compiled the rules and imported trafilatura before the clock runs)."""
    config = load(text, path, {})
    async with Runtime(config) as runtime:
        await runtime.poll_all(list(config.feeds[:2]))
        started = time.perf_counter()
        summaries = await runtime.poll_all(list(config.feeds[2:]))
        return time.perf_counter() - started, summaries


def extraction_cpu(folder: Path) -> float:
    body = next(folder.glob("*.html")).read_bytes()
    main_text(body, {"content-type": "text/html"}, "")  # imports and warms up
    best = float("inf")
    for _ in range(20):
        started = time.process_time()
        main_text(body, {"content-type": "text/html"}, "")
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--per-host", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "site"
        folder.mkdir()
        port = free_port()
        size = write_site(folder, port, args.feeds, args.items)
        server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("ingest_bench.py")), "--serve",
                                   str(folder), "--port", str(port)])
        try:
            wait_for_port(port)
            results = {}
            for full_text in (False, True):
                database = f"sqlite:///{Path(tmp) / f'bench-{full_text}.db'}"
                text = config_text(port, args.feeds, database, full_text, args.per_host)
                results[full_text] = asyncio.run(cycle(text, Path(tmp) / f"config-{full_text}.toml"))
        finally:
            server.terminate()
            server.wait()
        cpu = extraction_cpu(folder)
    items = args.feeds * args.items
    print(f"{args.feeds} feeds x {args.items} teaser items, article pages of {size:,.0f} bytes; "
          f"per_host {args.per_host}")
    for full_text, (seconds, summaries) in results.items():
        matches = sum(s.matches for s in summaries)
        errors = sorted({s.error for s in summaries if s.error})[:2]
        print(f"full_text = {str(full_text).lower():5}: {seconds:.2f} s, {1000 * seconds / items:.1f} ms per new item, "
              f"{matches} matches, statuses {sorted({s.status for s in summaries})} {errors or ''}")
    extra = (results[True][0] - results[False][0]) / items
    stage = sum(s.timings.get("full_text", 0.0) for s in results[True][1]) / args.feeds
    print(f"cost of full text per item: {1000 * extra:.1f} ms wall (pages fetched {args.per_host} at a time per "
          f"host); full-text stage {1000 * stage:.0f} ms per feed")
    print(f"trafilatura, one page: {1000 * cpu:.1f} ms CPU")


if __name__ == "__main__":
    main()
