"""Start-up of small commands (issue 21 point 12): `poll` of one unchanged feed served on 127.0.0.1 and
`items list`, each run as a fresh process, as a user runs them; prints the median wall and CPU seconds
(poll with the compiled rules cached, as after any earlier run, and without: the first run after an edit).

    python bench/startup_bench.py [--runs 5]

Where the time goes: python -X importtime -m monitor items list --config …, or
python -m cProfile -s cumulative -m monitor poll --config …
(importing SQLAlchemy and SQLModel dominates both once the rules are cached).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.feedserver import FeedServer, Route  # noqa: E402

RSS = ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>Fishing quotas agreed'
       '</title><link>https://news.example/1</link><guid>1</guid><description>Nothing to see.</description>'
       '</item></channel></rss>')


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = FeedServer().start()
    try:
        server.routes["/rss"] = Route(RSS.encode(), headers={"Content-Type": "application/rss+xml"}, etag="v1")
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "config.toml"
            config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "sqlite:///{folder}/m.db"\n'
                              f'[[feeds]]\nname = "local"\nurl = "{server.url("/rss")}"\n')
            base = [sys.executable, "-m", "monitor"]
            env["XDG_CACHE_HOME"] = str(Path(folder) / "cache")  # the compiled rules' cache, kept by the first poll
            subprocess.run([*base, "poll", "--config", str(config)], env=env, check=True, capture_output=True)
            for name, args in (("poll (one unchanged feed)", ["poll"]), ("items list", ["items", "list"]),
                               ("poll, rules not cached", ["poll"])):
                figures = []
                for run in range(runs):
                    if name.endswith("not cached"):
                        env["XDG_CACHE_HOME"] = str(Path(folder) / f"cold-{run}")
                    figures.append(timed([*base, *args, "--config", str(config)], env))
                wall = statistics.median(f[0] for f in figures)
                cpu = statistics.median(f[1] for f in figures)
                print(f"{name:28} median of {runs}: {wall:.2f} s wall, {cpu:.2f} s CPU")
    finally:
        server.close()


if __name__ == "__main__":
    main()
