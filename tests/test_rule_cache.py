"""The on-disk cache of compiled rules (issue 21 point 12): used while the rule files are as they were,
compiled again when one changes, ignored when damaged or not safe to read, and never in the way."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import monitor
from monitor.errors import RuleSetError
from monitor.rules import cache
from monitor.rules.cache import compiled_rules, rule_set_of
from monitor.scan import document_record
from monitor.types import Document
from tests.conftest import RULES, run_cli

RULE = """id: drills
title: Air-defence drills
severity: low
query: '"air defence" NEAR/3 drill*'
"""
DRILL = Document(id="d1", title="Air defence drills near the border", content="Air defence units began drills.")
EXERCISE = Document(id="d2", title="Air defence exercise", content="Air defence units began an exercise.")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "drills.yaml").write_text(RULE)
    return rules


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


class Compiles:
    """Counts the folders loaded from YAML (a cache hit loads none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = cache.load_folder

        def counted(directory: Path):  # type: ignore[no-untyped-def]
            self.count += 1
            return real(directory)

        monkeypatch.setattr(cache, "load_folder", counted)


def fired(directory: Path, env: dict[str, str], doc: Document) -> list[str]:
    return [m.rule for m in compiled_rules(directory, env).rule_set.match(doc)]


def cache_files(env: dict[str, str]) -> list[Path]:
    return sorted((Path(env["XDG_CACHE_HOME"]) / "crisis-monitor").glob("rules-*.pickle"))


def test_a_fresh_cache_is_used_and_matches_as_compiled(monkeypatch: pytest.MonkeyPatch,
                                                       env: dict[str, str]) -> None:
    compiles = Compiles(monkeypatch)
    first = compiled_rules(RULES, env)
    again = compiled_rules(RULES, env)
    assert compiles.count == 1
    assert [s.id for s in again.specs] == [s.id for s in first.specs] and again.blob == first.blob
    seeds = [Document(id=p.name, content=p.read_text()) for p in sorted((RULES.parent / "seeds").glob("*.txt"))]
    assert [document_record(d, again.rule_set.match(d)) for d in seeds] == \
           [document_record(d, first.rule_set.match(d)) for d in seeds]
    assert any(again.rule_set.match(d) for d in seeds)  # the comparison is of real matches
    [path] = cache_files(env)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    # what a parse worker reads instead of compiling: the same rule set
    worker = rule_set_of(again.blob)
    assert [document_record(d, worker.match(d)) for d in seeds] == \
           [document_record(d, first.rule_set.match(d)) for d in seeds]


def test_a_changed_rule_file_is_compiled_again(monkeypatch: pytest.MonkeyPatch, folder: Path,
                                               env: dict[str, str]) -> None:
    compiles = Compiles(monkeypatch)
    assert fired(folder, env, DRILL) == ["drills"] and fired(folder, env, EXERCISE) == []
    stat = (folder / "drills.yaml").stat()
    # Same size, same modification time: only the content says it changed.
    (folder / "drills.yaml").write_text(RULE.replace("drill*", "exerc*"))
    os.utime(folder / "drills.yaml", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fired(folder, env, DRILL) == [] and fired(folder, env, EXERCISE) == ["drills"]
    assert compiles.count == 2
    (folder / "entities").mkdir()  # a new entity file changes the key too
    (folder / "entities" / "places.yaml").write_text(
        "entities:\n  - {id: baltic, name: Baltic, type: region, aliases: [baltic sea]}\n")
    compiled_rules(folder, env)
    assert compiles.count == 3 and len(cache_files(env)) == 1


def test_another_version_of_the_package_compiles_again(monkeypatch: pytest.MonkeyPatch, folder: Path,
                                                       env: dict[str, str]) -> None:
    compiles = Compiles(monkeypatch)
    compiled_rules(folder, env)
    monkeypatch.setattr(monitor, "__version__", "99.0.0")
    compiled_rules(folder, env)
    assert compiles.count == 2


@pytest.mark.parametrize("damage", [b"", b"not a pickle at all", None])
def test_a_damaged_cache_is_ignored_and_written_anew(monkeypatch: pytest.MonkeyPatch, folder: Path,
                                                     env: dict[str, str], damage: bytes | None) -> None:
    compiled_rules(folder, env)
    [path] = cache_files(env)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage is None else damage)  # None: cut in half
    compiles = Compiles(monkeypatch)
    assert fired(folder, env, DRILL) == ["drills"] and compiles.count == 1
    assert path.read_bytes() == data  # rewritten whole
    assert fired(folder, env, DRILL) == ["drills"] and compiles.count == 1


def test_a_cache_others_may_write_is_not_read(monkeypatch: pytest.MonkeyPatch, folder: Path,
                                              env: dict[str, str]) -> None:
    compiled_rules(folder, env)
    [path] = cache_files(env)
    path.chmod(0o666)
    compiles = Compiles(monkeypatch)
    assert fired(folder, env, DRILL) == ["drills"] and compiles.count == 1


def test_no_cache_folder_is_no_error(tmp_path: Path, folder: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {"XDG_CACHE_HOME": str(blocker)}  # its crisis-monitor folder cannot be made
    assert fired(folder, env, DRILL) == ["drills"] and fired(folder, env, DRILL) == ["drills"]
    assert cache.cache_folder({"XDG_CACHE_HOME": "relative/path"}) == Path.home() / ".cache" / "crisis-monitor"


def test_a_service_keeps_its_cache_in_systemds_cache_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                               folder: Path) -> None:
    # the unit's CacheDirectory= gives the service $CACHE_DIRECTORY; its home (ProtectHome=) cannot be written
    service = tmp_path / "var-cache-crisis-monitor"
    service.mkdir(mode=0o700)
    env = {"CACHE_DIRECTORY": str(service), "XDG_CACHE_HOME": str(tmp_path / "unused")}
    compiles = Compiles(monkeypatch)
    assert fired(folder, env, DRILL) == ["drills"] and fired(folder, env, DRILL) == ["drills"]
    assert compiles.count == 1 and len(list(service.glob("rules-*.pickle"))) == 1
    assert not (tmp_path / "unused").exists()
    assert cache.cache_folder({"CACHE_DIRECTORY": "relative"}) == Path.home() / ".cache" / "crisis-monitor"


def test_files_of_folders_unused_for_a_month_go_when_another_is_written(tmp_path: Path, folder: Path,
                                                                          env: dict[str, str]) -> None:
    others = []
    for name in ("old", "recent"):
        other = tmp_path / name
        shutil.copytree(folder, other)
        compiled_rules(other, env)
        others.append(other)
        if name == "old":
            [old_file] = cache_files(env)
    long_ago = old_file.stat().st_mtime_ns - 40 * 86_400 * 10**9
    os.utime(old_file, ns=(long_ago, long_ago))
    compiled_rules(folder, env)
    assert old_file not in cache_files(env) and len(cache_files(env)) == 2
    assert fired(others[0], env, DRILL) == ["drills"]  # compiled again, as any miss
    assert len(cache_files(env)) == 3


def test_an_invalid_folder_is_never_cached(folder: Path, env: dict[str, str]) -> None:
    (folder / "drills.yaml").write_text(RULE.replace("severity: low", "severity: loud"))
    for _ in range(2):
        with pytest.raises(RuleSetError, match="severity"):
            compiled_rules(folder, env)
    assert cache_files(env) == []


def test_scan_reads_the_cache_as_the_files_are(tmp_path: Path, folder: Path) -> None:
    """End to end: the second scan (from the cache) prints what the first did, and an edit shows at once."""
    document = tmp_path / "news.txt"
    document.write_text("Air defence units began drills on Monday.")
    outputs = [run_cli("scan", str(document), "--rules", str(folder), "--format", "jsonl").stdout for _ in range(2)]
    assert outputs[0] == outputs[1] and '"rules": ["drills"]' in outputs[0]
    (folder / "drills.yaml").write_text(RULE.replace("drill*", "exerc*"))
    assert '"rules": []' in run_cli("scan", str(document), "--rules", str(folder), "--format", "jsonl").stdout
