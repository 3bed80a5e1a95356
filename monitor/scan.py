"""``scan`` and ``rules test``: rules over documents, output as text, JSON or JSON lines.

No database and no network: documents come from files, matches go to a stream.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any, TextIO, TypeVar

from monitor.errors import InputError
from monitor.listing import count
from monitor.rules.cache import compiled_rules
from monitor.rules.clauses import ClauseExamples
from monitor.rules.engine import RuleSet
from monitor.rules.loader import RuleSpec
from monitor.types import Document, Match
from monitor.workers import worker_init

_BOLD, _RESET = "\033[1m", "\033[0m"
# Documents per task handed to a worker process; an input shorter than this is matched in-process.
_CHUNK = 250
SHOWN_SKIPS = 10  # bad JSON lines told one by one; more are counted
_worker_rules: RuleSet | None = None  # a forked worker's copy of the compiled rules
T = TypeVar("T")


def load_rules(directory: Path) -> RuleSet:
    """The compiled rule set of a folder (cached on disk while its files are unchanged);
    RuleSetError listing every problem if invalid."""
    return compiled_rules(directory).rule_set


def match_record(match: Match, snippets: bool = True) -> dict[str, Any]:
    record = {"rule": match.rule, "severity": match.severity, "clauses": list(match.clauses),
              "terms": list(match.terms), "entities": list(match.entities), "snippet": match.snippet}
    if not snippets:
        del record["snippet"]
    return record


def document_record(doc: Document, matches: list[Match], snippets: bool = True) -> dict[str, Any]:
    return {"id": doc.id, "rules": [m.rule for m in matches],
            "matches": [match_record(m, snippets) for m in matches]}


def highlight(snippet: str, spans: Iterable[tuple[int, int]], color: bool) -> str:
    """The snippet with each span marked bold on a colour terminal; plain text elsewhere (a pipe or a
    file gets the snippet as written, no markers to strip)."""
    if not color:
        return snippet
    opening, closing = _BOLD, _RESET
    out: list[str] = []
    last = 0
    for start, end in sorted(set(spans)):
        if start < last:
            continue
        out.extend((snippet[last:start], opening, snippet[start:end], closing))
        last = end
    out.append(snippet[last:])
    return "".join(out)


def _write_text(out: TextIO, doc: Document, matches: list[Match], color: bool) -> None:
    for match in matches:
        out.write(f"{doc.id}: {match.rule} [{match.severity}] {match.title}\n")
        if match.clauses:
            out.write(f"  clauses:  {', '.join(match.clauses)}\n")
        out.write(f"  terms:    {', '.join(match.terms)}\n")
        if match.entities:
            out.write(f"  entities: {', '.join(match.entities)}\n")
        if match.snippet:
            out.write(f"  {highlight(match.snippet, match.highlights, color)}\n")
        out.write("\n")


def _chunks(documents: Iterable[Document]) -> Iterator[list[Document]]:
    chunk: list[Document] = []
    try:
        for doc in documents:
            chunk.append(doc)
            if len(chunk) == _CHUNK:
                yield chunk
                chunk = []
    except InputError:
        if chunk:
            yield chunk  # the documents read before a bad line are still matched
        raise
    if chunk:
        yield chunk


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _match_chunk(chunk: list[Document]) -> list[list[Match]]:
    assert _worker_rules is not None
    return [_worker_rules.match(doc) for doc in chunk]


def _match_chunk_without_snippets(chunk: list[Document]) -> list[list[Match]]:
    assert _worker_rules is not None
    return [_worker_rules.match(doc, snippets=False) for doc in chunk]


def _fired_chunk(chunk: list[Document]) -> list[list[str]]:
    assert _worker_rules is not None
    return [_worker_rules.fired(doc) for doc in chunk]


def fired_documents(rule_set: RuleSet, documents: Iterable[Document],
                    workers: int | None = None) -> Iterator[tuple[Document, list[str]]]:
    """Each document with the ids of the rules that fire on it, in input order; as match_documents."""
    return _in_order(rule_set, documents, workers, lambda rules, doc: rules.fired(doc), _fired_chunk)


def match_documents(rule_set: RuleSet, documents: Iterable[Document], workers: int | None = None,
                    snippets: bool = True) -> Iterator[tuple[Document, list[Match]]]:
    """Each document with its matches, in input order.

    An input longer than one chunk is matched by forked worker processes (one per
    usable core), which inherit the compiled rules, while this process reads the
    documents and writes the results. An InputError comes after every document before it.
    ``snippets=False``: matches without snippets (RuleSet.match).
    """
    if not snippets:
        return _in_order(rule_set, documents, workers, lambda rules, doc: rules.match(doc, snippets=False),
                         _match_chunk_without_snippets)
    return _in_order(rule_set, documents, workers, lambda rules, doc: rules.match(doc), _match_chunk)


def _in_order(rule_set: RuleSet, documents: Iterable[Document], workers: int | None,
              one: Callable[[RuleSet, Document], T], chunk_task: Callable[[list[Document]], list[T]],
              ) -> Iterator[tuple[Document, T]]:
    workers = _usable_cores() if workers is None else workers
    chunks = _chunks(documents)
    first = next(chunks, [])
    rest = chain([first], chunks)
    if workers < 2 or len(first) < _CHUNK or "fork" not in multiprocessing.get_all_start_methods():
        for chunk in rest:
            for doc in chunk:
                yield doc, one(rule_set, doc)
    else:
        yield from _match_in_workers(rule_set, rest, workers, chunk_task)


def _match_in_workers(rule_set: RuleSet, chunks: Iterator[list[Document]], workers: int,
                      chunk_task: Callable[[list[Document]], list[T]]) -> Iterator[tuple[Document, T]]:
    global _worker_rules
    pending: deque[tuple[list[Document], AsyncResult[list[T]]]] = deque()
    failure: InputError | None = None
    _worker_rules = rule_set
    try:
        with multiprocessing.get_context("fork").Pool(workers, worker_init) as pool:
            try:
                for chunk in chunks:
                    pending.append((chunk, pool.apply_async(chunk_task, (chunk,))))
                    while len(pending) > 2 * workers:
                        done, result = pending.popleft()
                        yield from zip(done, result.get(), strict=True)
            except InputError as error:
                failure = error
            while pending:
                done, result = pending.popleft()
                yield from zip(done, result.get(), strict=True)
    finally:
        _worker_rules = None
    if failure is not None:
        raise failure


def scan(paths: list[str], rules_dir: Path, fmt: str, out: TextIO, err: TextIO | None = None,
         snippets: bool = True) -> int:
    """Match every document of ``paths``; write them to ``out`` in ``fmt``. A JSON line that is no
    document is told on ``err`` (stderr) and skipped; the scan goes on, and then returns 1.
    ``snippets=False``: no snippet is cut, and the output has none (no ``snippet`` key in JSON)."""
    from monitor.documents import read_documents

    err = sys.stderr if err is None else err
    rule_set = load_rules(rules_dir)
    color = fmt == "text" and wants_color(out, os.environ)
    documents = matched = total_matches = 0
    records: list[dict[str, Any]] = []
    with Progress(err, os.environ) as progress:
        for doc, matches in match_documents(rule_set, read_documents(paths, progress.skip), snippets=snippets):
            progress.advance()
            documents += 1
            matched += bool(matches)
            total_matches += len(matches)
            if fmt == "jsonl":
                out.write(json.dumps(document_record(doc, matches, snippets), ensure_ascii=False) + "\n")
            elif fmt == "json":
                records.append(document_record(doc, matches, snippets))
            else:
                _write_text(out, doc, matches, color)
    if fmt == "json":
        json.dump(records, out, ensure_ascii=False, indent=1)
        out.write("\n")
    elif fmt == "text":
        out.write(f"{count(documents, 'document')}, {matched:,} matched, {count(total_matches, 'match', 'matches')}\n")
    if not documents and not progress.skipped:
        print(f"crisis-monitor: warning: no documents in {', '.join(paths)}", file=err)
    if progress.skipped > SHOWN_SKIPS:
        print(f"crisis-monitor: {count(progress.skipped, 'line')} skipped in all (the first {SHOWN_SKIPS} shown)",
              file=err)
    return 1 if progress.skipped else 0


class Progress:
    """Documents scanned, as a bar on ``err`` while it is a terminal that redraws a line (not
    TERM=dumb; the bar has no colour, so NO_COLOR changes nothing in it): a pipe or a file gets
    no bar. Skipped lines are told there too, above the bar."""

    def __init__(self, err: TextIO, env: Mapping[str, str]) -> None:
        self.err = err
        self.skipped = 0
        self._bar: Any = None
        if err.isatty() and env.get("TERM", "") != "dumb":
            from tqdm import tqdm  # only here: a piped scan does not pay for importing it

            self._bar = tqdm(file=err, desc="scan:", unit=" documents", leave=False, dynamic_ncols=True,
                             mininterval=0.25, colour=None, bar_format="{desc} {n:,} documents, "
                             "{elapsed}, {rate_noinv_fmt}")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def skip(self, error: InputError) -> None:
        """One bad line: told (the first SHOWN_SKIPS of them) with its hint; the scan goes on."""
        self.skipped += 1
        if self.skipped > SHOWN_SKIPS:
            return
        line = f"crisis-monitor: {InputError(error.message + '; line skipped', error.hint)}"
        if self._bar is not None:
            self._bar.write(line, file=self.err)
        else:
            print(line, file=self.err)


def wants_color(out: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and not where NO_COLOR is set (https://no-color.org) or TERM=dumb."""
    return out.isatty() and not env.get("NO_COLOR") and env.get("TERM", "") != "dumb"


def run_examples(rule_set: RuleSet, out: TextIO,
                 library: Sequence[ClauseExamples] = ()) -> tuple[int, int]:
    """Run every rule's examples against the whole rule set, and every named clause's examples
    (``library``'s and each rule's ``define:``) against the clause alone; (failures, examples run)."""
    failures = total = 0
    for rule in rule_set.rules:
        spec = rule.spec
        for expected, examples in ((True, spec.examples_match), (False, spec.examples_no_match)):
            for doc in examples:
                total += 1
                fired = any(m.rule == spec.id for m in rule_set.match(doc))
                if fired != expected:
                    failures += 1
                    _example_failed(out, str(spec.location.path), spec.id, expected, doc)
    clauses = [*library, *(c for rule in rule_set.rules for c in rule.spec.clause_examples)]
    alone = RuleSet([RuleSpec(id=str(n), title=c.clause.name, severity="info", query=c.clause, fields=c.fields)
                     for n, c in enumerate(clauses)], rule_set.gazetteer)
    for number, clause in enumerate(clauses):
        for expected, examples in ((True, clause.examples_match), (False, clause.examples_no_match)):
            for doc in examples:
                total += 1
                if any(m.rule == str(number) for m in alone.match(doc)) != expected:
                    failures += 1
                    _example_failed(out, clause.location.path, f"${clause.clause.name}", expected, doc)
    return failures, total


def _example_failed(out: TextIO, path: str, name: str, expected: bool, doc: Document) -> None:
    verb = "did not match" if expected else "matched"
    text = " ".join((doc.title or doc.content or doc.summary).split())[:100]
    out.write(f"{path}: FAIL {name}: example {'match' if expected else 'no_match'} {verb}: {text!r}\n")
