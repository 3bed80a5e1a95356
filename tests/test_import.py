"""`feeds import` and `feeds export` (issue 21, points 1 and 10): config.toml is never left broken, invalid
outlines are skipped one line each, duplicates reported; titles, htmlUrl and tags survive a round trip."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from monitor import files
from monitor.cli import main
from monitor.config import load_file
from monitor.feeds.opml import read_outlines, slug

CONFIG = '# my feeds\n[[feeds]]\nname = "nato"\nurl = "https://www.nato.int/rss.xml"\n'
OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>mine</title></head><body>
<outline text="NATO" xmlUrl="https://www.nato.int/rss.xml"/>
<outline text="Old FTP mirror" xmlUrl="ftp://files.example.org/feed.xml"/>
<outline text="Wire"><outline text="Reuters World &amp; Europe" title="Reuters World &amp; Europe"
  xmlUrl="https://www.reuters.com/world/europe/rss" htmlUrl="https://www.reuters.com/world/europe/"/></outline>
<outline text="Новости России" xmlUrl="https://ria.example/ru/rss" htmlUrl="https://ria.example/ru/"/>
<outline text="Leaky" xmlUrl="https://x.example/rss?k=${HOOK_SECRET}"/>
<outline text="Zürich News" xmlUrl="https://zh.example/rss"/>
</body></opml>
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    path.chmod(0o640)
    return path


def test_import_skips_invalid_outlines_one_line_each_and_writes_a_config_that_loads(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opml = tmp_path / "mine.opml"
    opml.write_text(OPML, encoding="utf-8")
    assert main(["feeds", "import", str(opml), "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{opml}:4: skipped 'Old FTP mirror' <ftp://files.example.org/feed.xml>: not an http(s) URL (ftp scheme); "
        "feeds are fetched over http or https",
        f"{opml}:8: skipped 'Leaky' <https://x.example/rss?k=${{HOOK_SECRET}}>: the URL holds ${{…}}, which "
        "config.toml would read from the environment"]
    assert "skipped 'NATO': https://www.nato.int/rss.xml is already configured as nato" in out
    assert f"3 feeds added to {config}, 1 duplicate skipped, 2 invalid skipped; reload the daemon" in out
    loaded = load_file(str(config), env={})
    assert [f.name for f in loaded.feeds] == ["nato", "reuters-world-europe", "новости-россии", "zürich-news"]
    reuters = loaded.feeds[1]
    assert (reuters.title, reuters.html_url, reuters.tags) == (
        "Reuters World & Europe", "https://www.reuters.com/world/europe/", ("wire",))
    assert config.read_text(encoding="utf-8").startswith(CONFIG)  # the user's text and comments kept
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["config.toml", "mine.opml"]  # no temporary file left behind


def test_an_import_of_nothing_new_leaves_the_file_as_it_was(config: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    opml = tmp_path / "only-bad.opml"
    opml.write_text('<opml version="2.0"><body><outline text="F" xmlUrl="ftp://f.example/"/></body></opml>')
    before = config.stat().st_mtime_ns
    assert main(["feeds", "import", str(opml), "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "0 feeds added" in out and "1 invalid skipped" in out and "not an http(s) URL" in err
    assert config.read_text(encoding="utf-8") == CONFIG and config.stat().st_mtime_ns == before


def test_a_write_that_fails_halfway_leaves_the_config_unchanged(config: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename is where the new text would replace the old: make it fail (a full or read-only disk)."""
    opml = tmp_path / "one.opml"
    opml.write_text('<opml version="2.0"><body><outline text="E" xmlUrl="https://e.example/rss"/></body></opml>')

    def refuse(source: str, target: str) -> None:
        assert Path(source).read_text(encoding="utf-8").endswith('url = "https://e.example/rss"\ntitle = "E"\n')
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files.os, "replace", refuse)
    assert main(["feeds", "import", str(opml), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err == (f"crisis-monitor: {config}: not changed: cannot write: Read-only file system "
                   "(hint: check that you may write the file and its folder)\n")
    assert config.read_text(encoding="utf-8") == CONFIG
    assert sorted(os.listdir(tmp_path)) == ["config.toml", "one.opml"]


def test_export_then_import_keeps_titles_html_urls_and_tags(config: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    opml = tmp_path / "mine.opml"
    opml.write_text(OPML, encoding="utf-8")
    assert main(["feeds", "import", str(opml), "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["feeds", "export", "--config", str(config)]) == 0
    exported = capsys.readouterr().out
    assert 'title="Reuters World &amp; Europe"' in exported and 'title="Новости России"' in exported
    again = {o.url: o for o in read_outlines(exported.encode(), "export")}
    reuters = again["https://www.reuters.com/world/europe/rss"]
    assert (reuters.title, reuters.html_url, reuters.tags) == (
        "Reuters World & Europe", "https://www.reuters.com/world/europe/", ("wire",))
    assert again["https://ria.example/ru/rss"].html_url == "https://ria.example/ru/"
    fresh = tmp_path / "fresh.toml"
    fresh.write_text("")
    back = tmp_path / "back.opml"
    back.write_text(exported, encoding="utf-8")
    assert main(["feeds", "import", str(back), "--config", str(fresh)]) == 0
    assert [(f.name, f.title or f.name, f.html_url, f.tags) for f in load_file(str(fresh), env={}).feeds] == [
        (f.name, f.title or f.name, f.html_url, f.tags) for f in load_file(str(config), env={}).feeds]


@pytest.mark.parametrize(("title", "name"), [("Reuters World & Europe", "reuters-world-europe"),
                                             ("Новости России", "новости-россии"), ("Zürich  News!", "zürich-news"),
                                             ("  ", "feed"), ("東京 ニュース", "東京-ニュース")])
def test_names_from_titles_keep_letters_of_any_script(title: str, name: str) -> None:
    assert slug(title) == name
