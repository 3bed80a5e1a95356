"""Documents for ``scan``: text files, JSON lines and feed files, from paths or stdin.

Reads files and nothing else. Errors name the file (and line for JSON lines); a bad JSON line can be
skipped, told to a callback, while the rest is read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from monitor.errors import InputError
from monitor.types import Document

TEXT_SUFFIXES = {".txt", ".md"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
FEED_SUFFIXES = {".xml", ".rss", ".atom"}
SUFFIXES = TEXT_SUFFIXES | JSONL_SUFFIXES | FEED_SUFFIXES
_JSON_FIELDS = ("title", "summary", "content", "text")
Skip = Callable[[InputError], None]  # told of each JSON line that is not a document


def jsonl_documents(lines: Iterable[str], name: str, skip: Skip | None = None) -> Iterator[Document]:
    """One Document per non-blank line: ``id`` plus title, summary, content or text. A line that is
    not one goes to ``skip`` (and reading goes on) when given, else raises InputError."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            document = _jsonl_document(line, f"{name}:{number}")
        except InputError as error:
            if skip is None:
                raise
            skip(error)
            continue
        yield document


def _jsonl_document(line: str, where: str) -> Document:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: invalid JSON: {error.msg}", "each line must be one JSON object") from None
    if not isinstance(record, dict) or "id" not in record:
        raise InputError(f"{where}: a line needs an object with an \"id\"",
                         'write {"id": "d1", "title": "…", "content": "…"}')
    values = {key: record.get(key) for key in _JSON_FIELDS}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise InputError(f"{where}: {key!r} must be a string")
    content = "\n".join(v for v in (values["content"], values["text"]) if v)
    tags = record.get("tags") or ()
    return Document(id=str(record["id"]), title=values["title"] or "", summary=values["summary"] or "",
                    content=content, feed=str(record.get("feed") or ""), tags=tuple(map(str, tags)),
                    url=str(record.get("url") or ""))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return path.read_bytes().decode("latin-1")
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None


def file_documents(path: Path, skip: Skip | None = None) -> Iterator[Document]:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        yield Document(id=path.name, content=_read_text(path))
    elif suffix in JSONL_SUFFIXES:
        yield from jsonl_documents(_read_text(path).splitlines(), str(path), skip)
    elif suffix in FEED_SUFFIXES:
        from monitor.feeds.parse import parse_documents

        try:
            data = path.read_bytes()
        except OSError as error:
            raise InputError(f"{path}: cannot read: {error.strerror}") from None
        documents, problem = parse_documents(data)
        if problem:
            raise InputError(f"{path}: {problem}", "is it an RSS or Atom file?")
        yield from documents
    else:
        raise InputError(f"{path}: unsupported file type {suffix or '(none)'}",
                         f"scan reads {', '.join(sorted(SUFFIXES))} files, or - for JSON lines on stdin")


def read_documents(paths: Iterable[str], skip: Skip | None = None) -> Iterator[Document]:
    """Documents of every path in order; folders are read recursively, ``-`` is stdin. ``skip``: as
    for jsonl_documents (a file that cannot be read at all always raises)."""
    for name in paths:
        if name == "-":
            yield from jsonl_documents(sys.stdin, "<stdin>", skip)
            continue
        path = Path(name)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix.lower() in SUFFIXES:
                    yield from file_documents(child, skip)
        elif path.exists():
            yield from file_documents(path, skip)
        else:
            raise InputError(f"{name}: no such file or folder")
