"""Listings with limits (issue 20): --limit N, --limit 0 for all, a line on stderr when rows were left
out, JSON written row by row; and the text table's cells (times to the second, cut cells end with "…")."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.listing import emit_limited, stamp, table, write_json
from tests.feedserver import FeedServer, Route
from tests.helpers import distinct_events, fresh_database, make_config, poll_once
from tests.test_store import DATABASES, rss


@pytest.fixture(params=DATABASES)
def five_items(request: pytest.FixtureRequest, feed_server: FeedServer, tmp_path: Path) -> str:
    """A config whose store holds five items of feed "f", each matching airspace-violation."""
    items = [(f"g{n}", title, f"https://n.example/{n}", text) for n, (title, text) in enumerate(distinct_events(5))]
    feed_server.routes["/f"] = Route(rss(*items))
    config = make_config(tmp_path, {"f": feed_server.url("/f")}, fresh_database(request.param, tmp_path))
    assert poll_once(config)["f"].new_items == 5
    return str(config.path)


@pytest.mark.parametrize("listing", [["items", "list"], ["matches", "list"], ["alerts", "list"]])
def test_a_cut_listing_says_so_on_stderr(five_items: str, listing: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    what = {"items": "items", "matches": "matches", "alerts": "deliveries"}[listing[0]]
    assert main([*listing, "--config", five_items, "--limit", "2", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 2
    assert err == f"showing 2 of 5 {what}; use --limit N for more, --limit 0 for all\n"
    assert main([*listing, "--config", five_items, "--limit", "0", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 5 and err == ""
    assert main([*listing, "--config", five_items, "--limit", "5"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 6 and err == ""  # a header and five rows, nothing left out


def test_limit_must_be_a_whole_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["items", "list", "--limit", "-3"])
    assert exit_.value.code == 2 and "-3 is negative; 0 means all" in capsys.readouterr().err


def test_json_is_written_row_by_row_and_reads_back_as_one_array() -> None:
    out = io.StringIO()
    seen: list[int] = []

    def fetch(limit: int | None) -> Iterator[dict[str, Any]]:
        assert limit is None  # --limit 0: every row, none counted
        for n in range(3):
            seen.append(len(out.getvalue()))  # what was written before this row was read
            yield {"n": n, "title": "Zürich"}

    assert emit_limited(fetch, lambda: pytest.fail("no count without a cut"), ["n"], "json", out, 0) == 0
    assert seen[0] == 0 and seen[1] > 0 and seen[2] > seen[1]
    assert json.loads(out.getvalue()) == [{"n": n, "title": "Zürich"} for n in range(3)]
    rows = [{"a": [1, {"b": "c"}]}, {"a": None}]
    for held in ([], rows):
        text = io.StringIO()
        write_json(iter(held), text)
        assert text.getvalue() == json.dumps(held, ensure_ascii=False, indent=1) + "\n"


def test_table_cells_show_times_to_the_second_and_cut_urls_with_an_ellipsis() -> None:
    assert stamp("2026-12-02T18:33:30.123456Z") == "2026-12-02 18:33:30Z"
    assert stamp("2026-12-02T18:33:30+00:00") == "2026-12-02 18:33:30Z"
    out = io.StringIO()
    url = "https://www.example.org/news/" + "a" * 80
    table([{"first_seen_at": "2026-12-02T18:33:30.999999Z", "url": url}], ["first_seen_at", "url"], out)
    row = out.getvalue().splitlines()[1]
    assert "2026-12-02 18:33:30Z" in row and ".999999" not in row
    assert row.endswith("…") and len(row.split()[-1]) == 60
