"""Compiled rule sets kept on disk, so a small command (``poll``, ``scan``) starts without reading
the YAML again or compiling it (together most of a ``poll`` of an unchanged feed).

One file per rules folder in ``$XDG_CACHE_HOME/crisis-monitor/`` (``~/.cache/crisis-monitor/`` when
that is unset; under systemd, the unit's ``CacheDirectory=``, which systemd names in
``$CACHE_DIRECTORY``): the compiled ``RuleSet`` (with its specs and gazetteer) pickled, under a key of all
they are made from — the path and content digest of every YAML file in the folder, the package's
version, the size and modification time of each of its own modules (a changed engine never reads an
old pickle), Python's version and the word-frequency lists the presearcher ranks terms by. A file
whose key differs, that cannot be read or unpickled, is ignored and written anew; one that cannot be
written (a read-only home and no ``CACHE_DIRECTORY``) is skipped. Pickle runs what it is given, so a file is read
only if it belongs to this user and no one else may write it, in a folder made private to the user.
A folder's file unread for 30 days is removed when another is written; deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.util
import os
import pickle
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

import monitor
from monitor.rules.engine import RuleSet
from monitor.rules.entities import Gazetteer
from monitor.rules.loader import RuleSpec, load_folder

_FORMAT = b"crisis-monitor compiled rules 2\n"
KEEP_UNUSED_NS = 30 * 86_400 * 10**9  # a folder's file not read for 30 days is removed when another is written


@dataclass(frozen=True)
class Compiled:
    """A folder's rules compiled (``rule_set``, which holds the specs and gazetteer) and pickled as
    compiled, before any matching fills its caches (``blob``): what the cache file keeps, and what a
    parse worker reads its own copy from (``rule_set_of``) rather than compiling again."""

    rule_set: RuleSet
    blob: bytes

    @classmethod
    def of(cls, rule_set: RuleSet) -> Compiled:
        return cls(rule_set, pickle.dumps(rule_set, protocol=pickle.HIGHEST_PROTOCOL))

    @property
    def specs(self) -> list[RuleSpec]:
        return [rule.spec for rule in self.rule_set.rules]

    @property
    def gazetteer(self) -> Gazetteer:
        return self.rule_set.gazetteer


def rule_set_of(blob: bytes) -> RuleSet:
    """The rule set of a ``Compiled.blob``."""
    with _no_gc():  # unpickling makes many small objects: the collector would run often, for nothing
        rule_set = pickle.loads(blob)
    if not isinstance(rule_set, RuleSet):
        raise TypeError(f"not a pickled RuleSet: {type(rule_set).__name__}")
    return rule_set


def compiled_rules(directory: Path, env: Mapping[str, str] | None = None) -> Compiled:
    """The compiled rules of ``directory``, from the cache when it holds them as the files are now;
    else loaded, compiled and cached. RuleSetError (nothing cached) when the folder is invalid."""
    folder = cache_folder(os.environ if env is None else env)
    key = source_key(directory) if folder is not None and directory.is_dir() else None
    path = folder / f"rules-{_name(directory)}.pickle" if folder is not None and key is not None else None
    if path is not None and key is not None:
        found = _read(path, key)
        if found is not None:
            return found
    specs, gazetteer = load_folder(directory)
    result = Compiled.of(RuleSet(specs, gazetteer))
    if path is not None and key is not None:
        _write(path, key, result.blob)
    return result


def cache_folder(env: Mapping[str, str]) -> Path | None:
    """Where compiled rules are kept: systemd's ``$CACHE_DIRECTORY`` (the unit's ``CacheDirectory=``, a
    service whose home cannot be written), else the XDG base directories; None when there is no home."""
    service = env.get("CACHE_DIRECTORY", "").split(":")[0]
    if os.path.isabs(service):
        return Path(service)
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the specification: a relative value is to be ignored
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):
            return None
    return Path(base) / "crisis-monitor"


def source_key(directory: Path) -> bytes:
    """A digest of everything a compiled rule set of ``directory`` is made from."""
    digest = hashlib.sha256(_FORMAT)
    for part in (str(directory), str(directory.absolute()), sys.version, monitor.__version__):
        digest.update(part.encode() + b"\0")
    digest.update(_code_stamp())
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml")):
        try:
            data = path.read_bytes()
        except OSError:
            data = b"(unreadable)"  # load_folder says why; the key only has to differ
        digest.update(str(path).encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.digest()


@cache
def _code_stamp() -> bytes:
    """The package's own modules (and the frequency lists) by size and modification time."""
    files = sorted(Path(monitor.__file__).parent.rglob("*.py"))
    spec = importlib.util.find_spec("wordfreq")
    for location in (spec.submodule_search_locations or []) if spec else []:
        files.extend(sorted((Path(location) / "data").glob("small_*.msgpack.gz")))
    stamp = hashlib.sha256()
    for path in files:
        with contextlib.suppress(OSError):
            stat = path.stat()
            stamp.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return stamp.digest()


def _name(directory: Path) -> str:
    return hashlib.sha256(f"{directory}\0{directory.absolute()}".encode()).hexdigest()[:24]


def _read(path: Path, key: bytes) -> Compiled | None:
    """The cached rules under ``key``, or None: missing, another key, not ours or damaged."""
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            if stat.st_uid != os.geteuid() or stat.st_mode & 0o022:
                return None
            if handle.read(len(_FORMAT)) != _FORMAT or handle.read(len(key)) != key:
                return None
            blob = handle.read()
        return Compiled(rule_set_of(blob), blob)
    except Exception:  # any damage (truncated, another class layout, ...) means: compile again
        return None


def _write(path: Path, key: bytes, blob: bytes) -> None:
    """Keep ``blob`` under ``key``, in one rename (a reader never sees half a file); on any error, don't."""
    handle: IO[bytes] | None = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".rules-", suffix=".tmp")
        handle = os.fdopen(descriptor, "wb")
        handle.write(_FORMAT + key)
        handle.write(blob)
        handle.close()
        os.replace(temporary, path)
        _forget_unused(path)
    except Exception:  # a cache that cannot be written only makes the next start slower
        if handle is not None:
            handle.close()
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _forget_unused(written: Path) -> None:
    """Remove the files of rules folders not read for KEEP_UNUSED_NS (a scan of a folder made once)."""
    now = os.stat(written).st_mtime_ns
    for other in written.parent.glob("rules-*.pickle"):
        with contextlib.suppress(OSError):
            stat = other.stat()
            if other != written and now - max(stat.st_atime_ns, stat.st_mtime_ns) > KEEP_UNUSED_NS:
                other.unlink()


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
