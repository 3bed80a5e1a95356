"""config.toml: the shipped file loads, strict keys, errors at the right line, ${VAR}, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Config, Secret, find_config, load, load_file
from monitor.errors import ConfigError
from tests.conftest import ROOT, run_cli

PATH = Path("/etc/cm/config.toml")


def load_text(text: str, env: dict[str, str] | None = None) -> Config:
    return load(text, PATH, env or {})


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_text(text, env)
    return str(caught.value)


def test_the_shipped_config_is_a_real_starting_point() -> None:
    config = load_file(str(ROOT / "config.toml"), env={})
    assert 15 <= len(config.feeds) <= 30
    assert all(f.url.startswith("https://") for f in config.feeds)
    assert [c.type for c in config.channels] == ["console"]
    assert config.rules == ROOT / "rules" and config.database == f"sqlite:///{ROOT / 'monitor.db'}"
    assert config.http.max_bytes == 10_000_000 and config.max_item_age == 2 * 86400


def test_every_key_of_the_shipped_config_has_a_comment() -> None:
    for number, line in enumerate((ROOT / "config.toml").read_text().splitlines(), 1):
        stripped = line.strip()
        if "=" in stripped and not stripped.startswith("#") and stripped.split("=")[0].strip() not in (
                "name", "url", "tags", "interval", "type"):
            assert "#" in stripped, f"config.toml:{number}: {stripped}"


def test_defaults_and_relative_paths() -> None:
    config = load_text("")
    assert config.rules == Path("/etc/cm/rules") and config.database == "sqlite:////etc/cm/monitor.db"
    assert config.poll_interval == 300 and config.http.timeout == 20 and config.http.per_host == 4
    assert [c.name for c in config.channels] == ["console"]


@pytest.mark.parametrize(("text", "expected"), [
    ("[monitor]\npoll_interval = \"5 minutes\"\n",
     "/etc/cm/config.toml:2: monitor.poll_interval: '5 minutes' is not a duration"),
    ("[monitor]\n\nrules = 'r'\ncolour = 1\n", "/etc/cm/config.toml:4: monitor.colour: unknown key"),
    ("[http]\nmax_bytes = 10\n", "/etc/cm/config.toml:2: http.max_bytes: expected str, got int 10"),
    ("[http]\nmax_bytes = \"ten\"\n", "/etc/cm/config.toml:2: http.max_bytes: 'ten' is not a size"),
    ("[http]\nconcurrency = 0\n", "/etc/cm/config.toml:2: http.concurrency: must be at least 1"),
    ("[[feeds]]\nname = \"a\"\nurl = \"https://a\"\n[[feeds]]\nname = \"a\"\nurl = \"https://b\"\n",
     "/etc/cm/config.toml:5: feeds[1].name: duplicate name 'a'"),
    ("[[feeds]]\nname = \"a\"\n", "/etc/cm/config.toml:1: feeds[0]: missing required key 'url'"),
    ("[[feeds]]\nname = \"a\"\nurl = \"ftp://a\"\n", "/etc/cm/config.toml:3: feeds[0].url: not an http(s) URL"),
    ("[[channels]]\nname = \"x\"\ntype = \"pager\"\n", "/etc/cm/config.toml:3: channels[0].type: unknown channel type"),
    ("[[channels]]\nname = \"x\"\ntype = \"console\"\nurl = \"https://a\"\n",
     "/etc/cm/config.toml:4: channels[0].url: unknown key"),
    ("[[channels]]\nname = \"x\"\ntype = \"webhook\"\nmin_severity = \"urgent\"\n",
     "/etc/cm/config.toml:4: channels[0].min_severity: unknown severity 'urgent'"),
    ("[monitor]\nrules = \"a\"\nrules = \"b\"\n", "/etc/cm/config.toml:3: not valid TOML"),
    ("[colours]\n", "/etc/cm/config.toml:1: colours: unknown table or key"),
    ("[monitor]\nlog_format = \"xml\"\n", "/etc/cm/config.toml:2: monitor.log_format: unknown log format"),
    ("[[channels]]\nname = \"m\"\ntype = \"email\"\nhost = \"h\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n"
     "ca_file = \"ca.pem\"\n", "/etc/cm/config.toml:7: channels[0].ca_file: ca_file without TLS"),
])
def test_errors_name_the_line_and_key_with_a_hint(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected), message
    assert "(hint: " in message and "\n" not in message


def test_environment_variables_are_expanded_and_kept_secret() -> None:
    text = ('[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "${HOOK_URL}"\nsecret = "${HOOK_SECRET}"\n'
            '[[feeds]]\nname = "private"\nurl = "https://feeds.example/${FEED_TOKEN}/rss"\n')
    env = {"HOOK_URL": "https://hooks.example/abc", "HOOK_SECRET": "s3cr3t-value", "FEED_TOKEN": "tok-123"}
    config = load_text(text, env)
    channel = config.channels[0]
    assert isinstance(channel.options["secret"], Secret)
    assert channel.options["secret"].reveal() == "s3cr3t-value"
    assert channel.options["url"].reveal() == "https://hooks.example/abc"
    assert Secret.of(channel.options["secret"]).reveal() == "s3cr3t-value"  # a Secret of a Secret keeps the value
    shown = f"{config!r} {channel!r} {channel.options['secret']} {config.feeds[0]!r} {config.feeds[0].display_url}"
    for secret in env.values():
        assert secret not in shown
    assert config.feeds[0].display_url == "https://feeds.example/${FEED_TOKEN}/rss"


def test_a_missing_environment_variable_is_named() -> None:
    message = error_of('[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "${HOOK_URL}"\n')
    assert message.startswith("/etc/cm/config.toml:4: channels[0].url: environment variable HOOK_URL is not set")


def test_the_database_password_is_never_shown() -> None:
    config = load_text('[monitor]\ndatabase = "postgresql+psycopg://app:hunter2@db.example/monitor"\n')
    assert "hunter2" not in repr(config) and "hunter2" not in config.display_database


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config("x.toml", {"CRISIS_MONITOR_CONFIG": "y.toml"}) == Path("x.toml")
    assert find_config(None, {"CRISIS_MONITOR_CONFIG": "y.toml"}) == Path("y.toml")
    assert find_config(None, {}) == Path("/etc/crisis-monitor/config.toml")
    (tmp_path / "config.toml").write_text("")
    assert find_config(None, {}) == Path("config.toml")


def test_the_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[http]\ntimeout = 20\n')
    result = run_cli("feeds", "list", "--config", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"crisis-monitor: {path}:2: http.timeout: expected str, got int 20 (hint: quote it: key = \"value\"; "
        "durations and sizes are strings too (\"5m\", \"10MB\"))"]
