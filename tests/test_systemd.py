"""The shipped systemd unit: verify is clean, the security exposure is at most 2.0, every
directive is commented, and sd_notify without systemd is a no-op."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from monitor.sdnotify import SystemdNotifier, watchdog_interval
from tests.conftest import ROOT

UNIT = ROOT / "systemd" / "crisis-monitor.service"
ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def local_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's console script, so verify can check it."""
    script = Path(sys.executable).parent / "crisis-monitor"
    path = tmp_path / "crisis-monitor.service"
    path.write_text(UNIT.read_text().replace("/opt/crisis-monitor/bin/crisis-monitor", str(script)))
    return path


@needs_systemd
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    result = subprocess.run([ANALYZE, "verify", str(local_unit(tmp_path))], capture_output=True, text=True)  # type: ignore[list-item]
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@needs_systemd
def test_security_exposure_is_at_most_2(tmp_path: Path) -> None:
    result = subprocess.run([ANALYZE, "security", "--offline=yes", str(local_unit(tmp_path))],  # type: ignore[list-item]
                            capture_output=True, text=True)
    score = re.search(r"Overall exposure level for crisis-monitor.service: ([\d.]+)", result.stdout)
    assert score, result.stdout[-500:]
    assert float(score.group(1)) <= 2.0


def test_every_directive_has_a_comment() -> None:
    lines = UNIT.read_text().splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            above = lines[number - 1]
            assert above.startswith("#") or ("=" in above and not above.startswith("#")), \
                f"crisis-monitor.service:{number + 1}: {line} has no comment"
    assert "Type=notify" in lines and "WatchdogSec=60s" in lines and "DynamicUser=yes" in lines


def test_sd_notify_is_a_no_op_without_systemd() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.ready("x") and not notifier.watchdog() and notifier.watchdog_interval is None


def test_watchdog_interval_is_half_of_watchdog_sec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None  # not ours
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None


def test_sd_notify_reaches_an_abstract_socket() -> None:
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0crisis-monitor-test-notify")
    listener.settimeout(5)
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@crisis-monitor-test-notify"})
        assert notifier.ready("3 feeds")
        assert listener.recv(100) == b"READY=1\nSTATUS=3 feeds"
        notifier.close()
    finally:
        listener.close()


def test_documentation_is_the_project_url() -> None:
    """pip installs no README to point a file:// URL at: the unit names the project's own address."""
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    documentation = [line.split("=", 1)[1] for line in UNIT.read_text().splitlines()
                     if line.startswith("Documentation=")]
    assert documentation == [urls["Documentation"]]
    assert urls["Documentation"].startswith(urls["Homepage"] + "#") and urls["Homepage"].startswith("https://")
    assert urls["Changelog"].startswith(urls["Homepage"] + "/") and urls["Changelog"].endswith("CHANGELOG.md")
