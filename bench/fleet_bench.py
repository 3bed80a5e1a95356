"""Three `crisis-monitor run` daemons on one PostgreSQL database: tests/fleet.py's scenario, with figures.

50 local feeds (10 of them one distinct airspace violation each), a 5 s interval, a webhook
receiver; after a window of a few intervals a new alert's sender is SIGKILLed mid-send (and
mid-fetch). Prints:
- requests per feed per interval, with three daemons and then with the two survivors (1.0 is once
  per interval; the ±10% jitter moves it a little);
- alerts acknowledged once / POSTed twice (only the one in flight at the kill may be);
- takeover after the SIGKILL: when the survivors first fetched each feed the dead daemon held, and
  sent its delivery, against the leases ([http] timeout x 3 + 60 s; channel timeout x 2 + 10 s);
- CPU seconds and peak RSS of each daemon, and the load (uptime) before and after.
Needs PostgreSQL: --database URL or CRISIS_MONITOR_TEST_DATABASE_URL (a database of its own is made
there and dropped at the end). Run: nice -n 5 python bench/fleet_bench.py [--feeds 50] [--windows 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fleet import DELIVERY_LEASE, FEED_LEASE, Fleet, agent
from tests.pgdb import VARIABLE, own_database


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help=f"a PostgreSQL URL (default: ${VARIABLE})")
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--matching", type=int, default=10, help="feeds with a matching item (at most 10)")
    parser.add_argument("--windows", type=int, default=4, help="intervals counted with three daemons")
    args = parser.parse_args()
    if args.database:
        os.environ[VARIABLE] = args.database
    if not os.environ.get(VARIABLE):
        parser.error(f"needs PostgreSQL: --database URL or ${VARIABLE}")
    own_database()
    print(f"load before: {load()}")
    with tempfile.TemporaryDirectory() as tmp, \
            Fleet(Path(tmp), os.environ[VARIABLE], args.feeds, args.matching) as fleet:
        outcome = fleet.outcome
        fleet.start_up()
        fleet.window(args.windows)
        fleet.kill_mid_send(feed=args.matching)
        fleet.take_over()
        requests, posts, acknowledged = fleet.feeds.requests, fleet.receiver.posts, fleet.receiver.acknowledged
    print(f"load after: {load()}")
    interval = outcome.interval
    print(f"{args.feeds} feeds, interval {interval:g} s, 3 daemons on one PostgreSQL; feed lease {FEED_LEASE:g} s, "
          f"delivery lease {DELIVERY_LEASE:g} s")
    start, end = outcome.window
    counts = outcome.requests(requests, start, end)
    per = [n / ((end - start) / interval) for n in counts.values()]
    shares = Counter(agent(s) for s in requests if start <= s.at < end)
    print(f"3 daemons, {end - start:.0f} s: requests per feed per interval mean {sum(per) / len(per):.2f}, "
          f"min {min(per):.2f}, max {max(per):.2f}; polls by daemon {dict(sorted(shares.items()))}")
    start, end = outcome.killed_at, min(outcome.feeds_taken_over_at.values())
    counts = outcome.requests(requests, start, end, exclude=outcome.held_feeds)
    per = [n / ((end - start) / interval) for n in counts.values()]
    shares = Counter(agent(s) for s in requests if start <= s.at < end)
    print(f"2 survivors, {end - start:.0f} s after the kill: requests per feed per interval mean "
          f"{sum(per) / len(per):.2f}, min {min(per):.2f}, max {max(per):.2f}; polls by daemon "
          f"{dict(sorted(shares.items()))}")
    acked = Counter(s.headers.get("idempotency-key") for s in acknowledged)
    sent = Counter(s.headers.get("idempotency-key") for s in posts)
    once, more = sum(1 for n in acked.values() if n == 1), sum(1 for n in acked.values() if n > 1)
    never, twice = len(set(outcome.alert_ids) - set(acked)), sum(1 for n in sent.values() if n == 2)
    print(f"alerts: {len(outcome.alert_ids)} in the store; acknowledged once {once}, more than once {more}, never "
          f"{never}; POSTed twice {twice} (the one in flight at the kill, same Idempotency-Key)")
    print(f"SIGKILL of {outcome.victim} mid-send and mid-fetch; it held {len(outcome.held_feeds)} feed claim(s):")
    for name, until in sorted(outcome.held_feeds.items()):
        print(f"  feed {name}: lease ran out {until - outcome.killed_at:.1f} s after the kill, fetched by a survivor "
              f"{outcome.feeds_taken_over_at[name] - outcome.killed_at:.1f} s after it")
    claim = outcome.delivery_claimed_until - outcome.killed_at
    sent_at = outcome.delivery_taken_over_at - outcome.killed_at
    print(f"  delivery {outcome.held_key[:8]}: claim ran out {claim:.1f} s after the kill, acknowledged from a "
          f"survivor {sent_at:.1f} s after it")
    for name, (cpu, peak) in sorted(outcome.usage.items()):
        note = " (at the kill)" if name == outcome.victim else ""
        print(f"daemon {name}: CPU {cpu:.1f} s, peak RSS {peak:.0f} MB{note}")


if __name__ == "__main__":
    main()
