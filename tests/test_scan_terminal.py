"""`scan` on a terminal and off it (issue 21 point 9): a progress bar on stderr only when stderr is a
terminal that redraws lines (not TERM=dumb), never in a pipe or a file; a JSON line that is no document
is one line naming the file and line, with a hint, and the scan goes on to exit 1 at the end."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from tests.conftest import ROOT, run_cli

GOOD = '{"id": "d%d", "text": "Three Russian MiG-31 jets violated Estonian airspace on day %d."}\n'


def corpus(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "news.jsonl"
    path.write_text("".join(lines))
    return path


def on_a_terminal(args: list[str], tmp_path: Path, **env: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (80 x 24) and stdout to a file: (status, what the
    terminal showed, stdout)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    out = tmp_path / "stdout"
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    with out.open("w") as stdout:
        process = subprocess.Popen([sys.executable, "-m", "monitor", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                                   stdout=stdout, stderr=terminal, env={**environment, **env})
    os.close(terminal)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the other side closed, the process has ended
            break
        if not chunk:
            break
        shown.extend(chunk)
    os.close(controller)
    return process.wait(timeout=120), shown.decode("utf-8", "replace"), out.read_text()


def test_a_terminal_shows_a_progress_bar_and_stdout_stays_clean(tmp_path: Path) -> None:
    path = corpus(tmp_path, [GOOD % (n, n) for n in range(30)])
    status, shown, stdout = on_a_terminal(["scan", str(path), "--format", "jsonl"], tmp_path, TERM="xterm")
    assert status == 0, shown
    assert "scan: " in shown and " documents" in shown and "\r" in shown  # a bar, redrawn in place
    assert [json.loads(line)["id"] for line in stdout.splitlines()] == [f"d{n}" for n in range(30)]
    assert "scan: " not in stdout


def test_no_color_keeps_the_bar_plain_and_term_dumb_has_none(tmp_path: Path) -> None:
    path = corpus(tmp_path, [GOOD % (n, n) for n in range(5)])
    status, shown, _ = on_a_terminal(["scan", str(path)], tmp_path, TERM="xterm", NO_COLOR="1")
    assert status == 0 and "scan: " in shown and "\x1b[" not in shown
    status, shown, stdout = on_a_terminal(["scan", str(path)], tmp_path, TERM="dumb")
    assert status == 0 and shown == "" and "5 documents, 5 matched" in stdout


def test_piped_stderr_has_no_bar(tmp_path: Path) -> None:
    path = corpus(tmp_path, [GOOD % (n, n) for n in range(5)])
    result = run_cli("scan", str(path), "--format", "jsonl")
    assert result.returncode == 0 and result.stderr == ""
    assert len(result.stdout.splitlines()) == 5


def test_a_bad_line_is_one_line_and_the_scan_goes_on(tmp_path: Path) -> None:
    path = corpus(tmp_path, [GOOD % (1, 1), "not json\n", GOOD % (3, 3), '{"title": "no id"}\n', GOOD % (5, 5)])
    result = run_cli("scan", str(path), "--format", "jsonl")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"crisis-monitor: {path}:2: invalid JSON: Expecting value; line skipped "
        "(hint: each line must be one JSON object)",
        f'crisis-monitor: {path}:4: a line needs an object with an "id"; line skipped '
        '(hint: write {"id": "d1", "title": "…", "content": "…"})']
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["d1", "d3", "d5"]


def test_a_bad_line_on_a_terminal_is_told_above_the_bar(tmp_path: Path) -> None:
    path = corpus(tmp_path, [GOOD % (1, 1), "{oops\n", GOOD % (3, 3)])
    status, shown, stdout = on_a_terminal(["scan", str(path), "--format", "jsonl"], tmp_path, TERM="xterm")
    assert status == 1
    assert f"crisis-monitor: {path}:2: invalid JSON: Expecting property name enclosed in double quotes; " \
           "line skipped" in shown
    assert [json.loads(line)["id"] for line in stdout.splitlines()] == ["d1", "d3"]


def test_many_bad_lines_are_counted_after_the_first_ten(tmp_path: Path) -> None:
    bad = 12
    path = corpus(tmp_path, [GOOD % (0, 0)] + ["[1, 2]\n"] * bad)
    result = run_cli("scan", str(path), "--format", "jsonl")
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 11
    assert [line.split(": ")[1] for line in lines[:10]] == [f"{path}:{n}" for n in range(2, 12)]
    assert lines[10] == f"crisis-monitor: {bad} lines skipped in all (the first 10 shown)"
    assert len(result.stdout.splitlines()) == 1
