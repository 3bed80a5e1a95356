"""The README's command examples that need no network run, and do what they say."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest

from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()
OFFLINE = ("scan", "rules", "demo", "feeds list", "feeds export", "--help", "--version")


def examples() -> list[str]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip().split("&& ")[-1].removeprefix(".venv/bin/")
            offline = line.startswith("crisis-monitor ") and line.removeprefix("crisis-monitor ").startswith(OFFLINE)
            if offline or "| crisis-monitor " in line:
                commands.append(line)
    return commands


def test_the_readme_has_offline_examples() -> None:
    found = examples()
    assert any(c.startswith("crisis-monitor demo") for c in found)
    assert any("scan - --format jsonl" in c for c in found)


def run_example(command: str) -> subprocess.CompletedProcess[str]:
    """Run a README command line; ``echo … | crisis-monitor …`` feeds the echo's argument on stdin."""
    stdin = None
    if "| crisis-monitor " in command:
        producer, command = command.split("| ", 1)
        stdin = shlex.split(producer)[1] + "\n"
    return run_cli(*shlex.split(command)[1:], stdin=stdin)


@pytest.mark.parametrize("command", examples())
def test_readme_example_runs(command: str) -> None:
    result = run_example(command)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_demo_delivers_every_alert_with_a_valid_signature() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "signatures all valid" in out and "✗" not in out
    assert "ALERT HIGH airspace-violation: Escalation in the Baltics" in out  # the console channel
    assert "✓ [HIGH] article-4: Escalation in the Baltics" in out             # the webhook receiver
    assert "Scaparrotti" not in out.split("webhook receiver:")[1]              # seed 004 alerts on nothing core
    # the republished seeds end as stories with updates, and the summary says what that saved
    assert re.search(r"UPDATE HIGH airspace-violation: .* — now \d sources: ", out)
    saved = re.search(r"(\d+) reports → (\d+) stories: (\d+) alerts \+ (\d+) updates instead of (\d+) alerts", out)
    assert saved, out[-500:]
    reports, stories, alerts, updates, before = map(int, saved.groups())
    assert stories < reports and updates > 0 and alerts + updates < before


def shown_outputs() -> list[tuple[str, str]]:
    """Examples whose output the README shows in a ```json block right after them."""
    pairs = re.findall(r"```sh\n(echo .*?)```\n```json\n(.*?)```", README, re.S)
    return [(command.replace("\\\n", " ").strip(), output) for command, output in pairs]


def test_the_readme_shows_some_output() -> None:
    assert shown_outputs()


@pytest.mark.parametrize(("command", "shown"), shown_outputs())
def test_readme_output_is_what_the_command_prints(command: str, shown: str) -> None:
    result = run_example(command)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(shown)
