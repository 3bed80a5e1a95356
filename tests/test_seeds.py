"""The seed corpus: kept verbatim, and the rules built from it fire as its labels say."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.types import Document
from tests.conftest import ROOT, SEEDS

LABELS = yaml.safe_load((SEEDS / "labels.yaml").read_text())
SHARED = ROOT.parent / "shared" / "seeds"


def test_every_seed_is_labelled() -> None:
    assert sorted(LABELS) == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert len(LABELS) == 5


def test_seeds_are_verbatim_copies() -> None:
    """The project's own seeds/ against the checksums taken from the originals (seeds/SHA256SUMS), so the
    check runs in any checkout; the shared originals too, where they sit beside this one."""
    import hashlib

    sums = dict(reversed(line.split("  ")) for line in (SEEDS / "SHA256SUMS").read_text().splitlines())
    assert sorted(sums) == sorted(p.name for p in SEEDS.glob("*.txt"))
    for name, digest in sums.items():
        assert hashlib.sha256((SEEDS / name).read_bytes()).hexdigest() == digest, name
    for path in SHARED.glob("*.txt") if SHARED.is_dir() else ():
        assert (SEEDS / path.name).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("name", sorted(LABELS))
def test_seed_labels(rule_set, name: str) -> None:  # type: ignore[no-untyped-def]
    text = (SEEDS / name).read_text(encoding="utf-8")
    fired = {m.rule for m in rule_set.match(Document(id=name, content=text))}
    label = LABELS[name]
    assert set(label["must"]) <= fired, f"{name}: missing {set(label['must']) - fired}"
    assert not set(label["must_not"]) & fired, f"{name}: unwanted {set(label['must_not']) & fired}"


def test_seed_004_triggers_none_of_the_core_rules(rule_set) -> None:  # type: ignore[no-untyped-def]
    text = (SEEDS / "004_8e1230a5eb441382.txt").read_text(encoding="utf-8")
    fired = {m.rule for m in rule_set.match(Document(id="004", content=text))}
    assert not fired & {"article-4", "airspace-violation", "shoot-down"}


def test_packaged_seeds_are_the_project_seeds() -> None:
    from monitor.cli import packaged

    assert sorted(p.name for p in packaged("seeds").glob("*.txt")) == sorted(LABELS)
    assert Path(packaged("rules") / "article-4.yaml").is_file()
