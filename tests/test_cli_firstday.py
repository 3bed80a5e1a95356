"""What bites a new user on the first day (issue 21): secrets only where something is sent, exit codes,
consistent options and errors across commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main

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
