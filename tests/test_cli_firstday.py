"""What bites a new user on the first day (issue 21): secrets only where something is sent, exit codes,
consistent options and errors across commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.units import format_duration, parse_duration
from tests.feedserver import FeedServer, Route
from tests.test_store import VIOLATION, rss

ROOT = Path(__file__).resolve().parent.parent


def hook_config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "sqlite:///{tmp_path / "m.db"}"\n'
                      '[web]\nlisten = "127.0.0.1:0"\ntoken = "${WEB_TOKEN}"\n'
                      '[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "${HOOK_URL}"\nsecret = "${HOOK_SECRET}"\n'
                      '[[feeds]]\nname = "f"\nurl = "https://feeds.example/rss?key=${FEED_KEY}"\n' + extra)
    return config


@pytest.mark.parametrize("command", [["items", "list"], ["matches", "list"], ["alerts", "list"], ["feeds", "list"],
                                     ["feeds", "status"], ["feeds", "export"], ["rules", "check"]])
def test_commands_that_send_nothing_need_no_secrets(command: list[str], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOOK_URL", "HOOK_SECRET", "WEB_TOKEN", "FEED_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = hook_config(tmp_path)
    assert main([*command, "--config", str(config)]) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert "not set" not in err
    if command == ["feeds", "list"]:
        assert "https://feeds.example/rss?key=${FEED_KEY}" in out  # shown as written, never expanded


def test_commands_that_send_still_need_their_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOOK_URL", "HOOK_SECRET", "WEB_TOKEN", "FEED_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = hook_config(tmp_path)
    for command in (["poll"], ["alerts", "test", "hook"], ["run"]):
        assert main([*command, "--config", str(config)]) == 1
        err = capsys.readouterr().err
        assert "environment variable WEB_TOKEN is not set" in err and err.count("\n") == 1


def feed_config(tmp_path: Path, feeds: dict[str, str], extra: str = "") -> Path:
    lines = [f'[monitor]\nrules = "{ROOT / "rules"}"\nparse_workers = 0\n'
             f'database = "sqlite:///{tmp_path / "m.db"}"\n' + extra]
    lines += [f'[[feeds]]\nname = "{name}"\nurl = "{url}"\ninterval = "2m"\n' for name, url in feeds.items()]
    config = tmp_path / "config.toml"
    config.write_text("".join(lines))
    return config


DOWN = "http://127.0.0.1:9/nothing"


def test_poll_exits_1_when_every_feed_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = feed_config(tmp_path, {"down": DOWN})
    assert main(["poll", "--config", str(config)]) == 1
    assert "1 feed polled (1 failing): 0 new items, 0 matches, 0 alerts" in capsys.readouterr().out


def test_poll_exits_0_when_some_feeds_failed_unless_strict(feed_server: FeedServer, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    feed_server.routes["/f"] = Route(rss(("g1", "Jets over Estonia", "https://n.example/1", VIOLATION)))
    config = feed_config(tmp_path, {"f": feed_server.url("/f"), "down": DOWN})
    assert main(["poll", "--config", str(config)]) == 0
    assert "2 feeds polled (1 failing): 1 new item, 1 match, 1 alert" in capsys.readouterr().out
    assert main(["poll", "--config", str(config), "--strict"]) == 1


def test_poll_exits_1_when_a_delivery_failed(feed_server: FeedServer, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    feed_server.routes["/f"] = Route(rss(("g1", "Jets over Estonia", "https://n.example/1", VIOLATION)))
    feed_server.answer = lambda _: (500, 0.0)
    hook = f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{feed_server.url("/hook")}"\n'
    config = feed_config(tmp_path, {"f": feed_server.url("/f")}, hook)
    assert main(["poll", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "1 feed polled (0 failing): 1 new item, 1 match, 1 alert; 1 delivery failed (0 dead" in out


def test_usage_errors_exit_2_with_the_command_s_own_usage(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = feed_config(tmp_path, {"down": DOWN})
    assert main(["alerts", "retry", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: crisis-monitor alerts retry") and "an alert ID, or --dead" in err
    with pytest.raises(SystemExit) as exit_:
        main(["poll", "--config", str(config), "--nonsense"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage: crisis-monitor poll")
    assert "unrecognized arguments: --nonsense" in err
    assert main(["rules", "check", str(ROOT / "rules"), "--rules", str(tmp_path)]) == 2
    assert "the folder is given twice" in capsys.readouterr().err


def test_rules_folder_by_option_everywhere(feed_server: FeedServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRISIS_MONITOR_CONFIG", raising=False)
    rules = tmp_path / "mine"
    rules.mkdir()
    (rules / "jets.yaml").write_text("id: jets\ntitle: Jets\nseverity: high\nquery: jets\n")
    for command in (["rules", "check"], ["rules", "test"]):
        assert main([*command, "--rules", str(rules)]) == 0
        assert f"{rules}: " in capsys.readouterr().err
    assert main(["rules", "check", str(rules)]) == 0
    assert "1 rule, 0 entities: ok" in capsys.readouterr().err
    feed_server.routes["/f"] = Route(rss(("g1", "Jets over Estonia", "https://n.example/1", VIOLATION)))
    config = feed_config(tmp_path, {"f": feed_server.url("/f")})
    assert main(["poll", "--config", str(config), "--rules", str(rules)]) == 0
    assert "ALERT HIGH jets: Jets over Estonia" in capsys.readouterr().out


def test_unknown_feed_and_rule_names_are_errors_with_a_did_you_mean(
        feed_server: FeedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed_server.routes["/f"] = Route(rss(("g1", "Jets over Estonia", "https://n.example/1", VIOLATION)))
    config = str(feed_config(tmp_path, {"estonia-news": feed_server.url("/f")}))
    assert main(["poll", "--config", config]) == 0
    capsys.readouterr()
    for command, hint in ((["items", "list", "--feed", "estonia-nwes"], "did you mean 'estonia-news'?"),
                          (["poll", "--feed", "estonia-new"], "did you mean 'estonia-news'?"),
                          (["matches", "list", "--rule", "airspace-violaton"], "did you mean 'airspace-violation'?"),
                          (["alerts", "list", "--rule", "airspace-violaton"], "did you mean 'airspace-violation'?")):
        assert main([*command, "--config", config]) == 1, command
        err = capsys.readouterr().err
        assert hint in err and err.count("\n") == 1, err
    # a known rule without matches is an empty listing, not an error
    assert main(["matches", "list", "--rule", "article-4", "--config", config]) == 0
    assert capsys.readouterr().out == "(none)\n"


def test_alerts_list_by_rule_and_time_with_a_time_column(feed_server: FeedServer, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    feed_server.routes["/f"] = Route(rss(("g1", "Jets over Estonia", "https://n.example/1", VIOLATION)))
    config = str(feed_config(tmp_path, {"f": feed_server.url("/f")}))
    assert main(["poll", "--config", config]) == 0
    capsys.readouterr()
    assert main(["alerts", "list", "--config", config, "--rule", "airspace-violation", "--since", "1h"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["CREATED_AT", "ID", "RULE"] and "airspace-violation" in row
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  ", row)
    assert main(["alerts", "list", "--config", config, "--rule", "article-4"]) == 0
    assert capsys.readouterr().out == "(none)\n"


def test_feeds_list_shows_intervals_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = feed_config(tmp_path, {"down": DOWN})
    assert main(["feeds", "list", "--config", str(config)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "INTERVAL", "TAGS", "TITLE", "URL"] and row.split()[:2] == ["down", "2m"]
    assert main(["feeds", "list", "--config", str(config), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["interval"] == 120.0


@pytest.mark.parametrize(("seconds", "text"), [(120.0, "2m"), (90.0, "90s"), (86400.0, "1d"), (5400.0, "90m"),
                                               (30.0, "30s"), (604800.0, "1w"), (7200.0, "2h")])
def test_durations_are_shown_as_config_files_write_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def damaged_config(tmp_path: Path, database: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\nparse_workers = 0\ndatabase = "sqlite:///{database}"\n'
                      '[[feeds]]\nname = "f"\nurl = "http://127.0.0.1:9/rss"\n')
    return config


@pytest.mark.parametrize("command", [["items", "list"], ["feeds", "status"], ["poll"], ["run"]])
def test_a_file_that_is_no_database_is_one_line_naming_it(command: list[str], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "monitor.db"
    garbage = bytes(range(256)) * 32
    database.write_bytes(garbage)
    assert main([*command, "--config", str(damaged_config(tmp_path, database))]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"database {database}: damaged: file is not a database" in err
    assert "backup" in err and "Run it as a service" in err
    assert database.read_bytes() == garbage  # nothing written over what may still be rescued


def test_a_page_damaged_later_is_the_same_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    from monitor.store.repo import Store

    database = tmp_path / "monitor.db"
    Store(f"sqlite:///{database}").close()
    with sqlite3.connect(database) as connection:  # items on many pages, checkpointed into the file
        connection.execute("PRAGMA journal_mode=DELETE")
    data = bytearray(database.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for number in range(1, len(data) // page):  # every page but the first (the header and the schema)
        data[number * page:(number + 1) * page] = b"\xff" * page
    database.write_bytes(bytes(data))
    assert main(["items", "list", "--config", str(damaged_config(tmp_path, database))]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"database {database}: damaged: " in err and "malformed" in err
    assert "backup" in err


def test_a_folder_sqlite_cannot_write_says_why() -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from monitor.store.schema import _open_error

    error = OperationalError("PRAGMA journal_mode=WAL", None, sqlite3.OperationalError("unable to open database file"))
    message = str(_open_error("sqlite:////srv/ro/monitor.db", error))
    assert message.startswith("database /srv/ro/monitor.db: cannot open: unable to open database file")
    assert "the folder /srv/ro and the file must be writable" in message and "monitor.db-wal" in message
    assert "database server" not in message
    server = str(_open_error("postgresql+psycopg://u:pw@db/x", error))
    assert "database server runs" in server and "pw" not in server


@pytest.mark.skipif(hasattr(__import__("os"), "geteuid") and __import__("os").geteuid() == 0,
                    reason="root writes to read-only folders")
def test_a_read_only_database_folder_is_the_sqlite_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.store.repo import Store

    folder = tmp_path / "ro"
    folder.mkdir()
    Store(f"sqlite:///{folder / 'monitor.db'}").close()
    for leftover in folder.glob("monitor.db-*"):
        leftover.unlink()
    folder.chmod(0o555)
    try:
        assert main(["items", "list", "--config", str(damaged_config(tmp_path, folder / "monitor.db"))]) == 1
    finally:
        folder.chmod(0o755)
    err = capsys.readouterr().err
    assert "must be writable" in err and "WAL" in err and "database server" not in err


def test_a_one_line_query_that_starts_with_a_quote_gets_the_yaml_hint(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.yaml").write_text('id: r\ntitle: R\nseverity: high\nquery: "shot down" NEAR/5 drone\n')
    assert main(["rules", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path}/r.yaml:4:20: invalid YAML")
    assert "query: >" in out and "query: '\"shot down\" NEAR/5 drone'" in out and out.count("\n") == 1


def test_rules_check_warns_of_a_bare_not_and_of_unknown_feeds_and_tags(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config.toml found without --config
    monkeypatch.delenv("CRISIS_MONITOR_CONFIG", raising=False)
    rules = tmp_path / "rules"
    (tmp_path / "etc").mkdir()
    rules.mkdir()
    (rules / "not.yaml").write_text("id: n\ntitle: N\nseverity: high\nquery: NOT drone\n")
    (rules / "meta.yaml").write_text("id: m\ntitle: M\nseverity: high\nquery: >\n  drone AND\n"
                                     "  (feed:reuter OR tag:natoo OR tag:nato)\n")
    config = tmp_path / "etc" / "config.toml"
    config.write_text(f'[monitor]\nrules = "{rules}"\n[[feeds]]\nname = "reuters"\nurl = "https://x.example/rss"\n'
                      'tags = ["nato"]\n')
    assert main(["rules", "check", str(rules)]) == 0  # warnings do not fail the check
    out = capsys.readouterr().out
    assert out == (f"{rules}/not.yaml:4:8: warning: the query is only NOT …, so it matches nearly every item "
                   "(hint: say what an item must hold too, as in drone AND NOT camera)\n")
    assert main(["rules", "check", str(rules), "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert f"{rules}/meta.yaml:6:4: warning: feed:reuter: no such feed in the config" in out
    assert "did you mean 'reuters'?" in out
    assert f"{rules}/meta.yaml:6:19: warning: tag:natoo: no such tag" in out and "tag:nato:" not in out
    assert out.count("\n") == 3 and err.rstrip().endswith("ok, 3 warnings")


def test_scan_text_piped_has_no_markers_and_an_empty_folder_warns(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "d.txt"
    doc.write_text("Three Russian MiG-31 jets violated Estonian airspace for 12 minutes.\n")
    assert main(["scan", str(doc), "--rules", str(ROOT / "rules")]) == 0
    out = capsys.readouterr().out
    assert "  Three Russian MiG-31 jets violated Estonian airspace for 12 minutes.\n" in out and "**" not in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["scan", str(empty), "--rules", str(ROOT / "rules")]) == 0
    assert capsys.readouterr().err == f"crisis-monitor: warning: no documents in {empty}\n"


def test_colour_only_on_a_terminal_without_no_color_or_term_dumb() -> None:
    import io

    from monitor.scan import wants_color

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wants_color(Terminal(), {"TERM": "xterm-256color"})
    assert not wants_color(Terminal(), {"TERM": "xterm", "NO_COLOR": "1"})
    assert not wants_color(Terminal(), {"TERM": "dumb"})
    assert not wants_color(io.StringIO(), {"TERM": "xterm"})
