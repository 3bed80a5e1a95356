"""config.toml: strict keys, durations and sizes as strings, ``${VAR}`` from the environment.

Pure: ``load(text, path, env)`` reads nothing but its arguments; ``load_file`` adds the
file read and the lookup order. Every problem is a ConfigError that names the file, the
line of the offending key (found in the text, since tomllib keeps no positions) and the
key, plus a hint. Values that came from the environment, and keys that hold secrets,
are wrapped in ``Secret`` so that no ``repr``, log line or listing ever shows them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cssselect import GenericTranslator, SelectorError

from monitor import __version__
from monitor.errors import ConfigError, did_you_mean
from monitor.types import SEVERITIES
from monitor.units import parse_duration, parse_size

DEFAULT_USER_AGENT = f"crisis-monitor/{__version__} (+https://github.com/crisis-monitor/crisis-monitor)"
CHANNEL_TYPES = ("console", "webhook", "slack", "email")
SECRET_KEYS = frozenset({"secret", "password", "username", "url"})
# Letters and digits of any script (an OPML title "Новости" becomes the name "новости"), "_", "-", ".".
_NAME_RE = re.compile(r"^[^\W_][\w.-]*$")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Secret(str):
    """A string that never shows itself: ``repr`` and ``str`` formatting in logs print ``***``.

    It is still a ``str`` for the code that needs the value (``secret.reveal()`` says so
    explicitly where it matters). ``template`` is the value as written in the file, with
    ``${VAR}`` in place of what the environment gave: safe to show.
    """

    template: str = "***"

    @classmethod
    def of(cls, value: str, template: str = "***") -> Secret:
        if isinstance(value, Secret):  # str(secret) is "***": never build a Secret from one
            template = value.template if template == "***" else template
            value = value.reveal()
        secret = cls(value)
        secret.template = template
        return secret

    def __repr__(self) -> str:
        return "Secret('***')"

    def reveal(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"


class Unresolved(Secret):
    """A ``${VAR}`` whose variable is not set, in a config loaded for a command that sends nothing
    (listings, ``rules check``): the value is empty and no check looks at it; ``template`` shows it."""


def reveal(value: str) -> str:
    """The plain value of a config string, Secret or not."""
    return value.reveal() if isinstance(value, Secret) else value


def redact_url(url: str) -> str:
    """A URL fit for a log line: no password, no query string (tokens live there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}" if parts.password else f"{parts.username}@{netloc}"
    query = "?***" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}" if parts.scheme else "***"


@dataclass(frozen=True)
class HttpSettings:
    timeout: float = 20.0
    max_bytes: int = 10_000_000
    concurrency: int = 32
    per_host: int = 4
    user_agent: str = DEFAULT_USER_AGENT
    max_redirects: int = 5
    robots_ttl: float = 3600.0


TIERS = ("official", "wire", "media", "other")
STORY_WINDOW = 96 * 3600.0


@dataclass(frozen=True)
class FeedSpec:
    """A feed as configured. ``url`` may be a Secret when it came from the environment."""

    name: str
    url: str
    interval: float | None = None
    tags: tuple[str, ...] = ()
    full_text: bool = False
    full_text_selector: str = ""
    title: str = ""  # a human title, as an OPML outline gave it
    html_url: str = ""  # the site's home page (OPML htmlUrl)
    publisher: str = ""  # who corroborates (issue 15); "" means the registrable domain of each item's URL
    tier: str = "other"  # one of TIERS: a rule may count only some tiers toward min_sources

    @property
    def display_url(self) -> str:
        return self.url.template if isinstance(self.url, Secret) else self.url


@dataclass(frozen=True)
class ChannelSpec:
    """A channel as configured: common keys, plus the type's own ``options`` (validated and
    converted: durations in seconds, secrets as Secret).

    ``quiet_hours`` is (start, end) in minutes after midnight in ``timezone``; ``group_window``
    and ``group_max`` turn bursts of one rule into one message.
    """

    name: str
    type: str
    min_severity: str = "info"
    tags: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    quiet_hours: tuple[int, int] | None = None
    timezone: str = "UTC"
    group_window: float | None = None
    group_max: int | None = None


@dataclass(frozen=True)
class DeliverySettings:
    """Retries of failed deliveries: exponential from ``backoff`` to ``max_backoff``, with jitter."""

    attempts: int = 8
    backoff: float = 30.0
    max_backoff: float = 3600.0


@dataclass(frozen=True)
class Config:
    path: Path
    rules: Path
    database: str = field(repr=False)
    poll_interval: float = 300.0
    min_interval: float = 60.0
    max_interval: float = 3600.0
    max_item_age: float = 2 * 86400.0
    stale_after: float = 2 * 86400.0
    stop_timeout: float = 10.0
    parse_workers: int = 2
    log_format: str = "text"
    http: HttpSettings = HttpSettings()
    feeds: tuple[FeedSpec, ...] = ()
    channels: tuple[ChannelSpec, ...] = ()
    delivery: DeliverySettings = DeliverySettings()
    web_listen: str = ""
    web_token: Secret | None = field(default=None, repr=False)
    web_public_url: str = ""
    story_window: float = STORY_WINDOW
    retention: float | None = None  # seconds; None: keep everything

    @property
    def display_database(self) -> str:
        return redact_url(self.database)

    def feed(self, name: str) -> FeedSpec:
        for spec in self.feeds:
            if spec.name == name:
                return spec
        raise ConfigError(f"{self.path}: no feed named {name!r}", did_you_mean(name, [f.name for f in self.feeds],
                                                                             "feeds"))


# --- finding the line of a key -------------------------------------------------------------

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")


def _key_line(text: str, table: str, index: int | None, key: str | None) -> int:
    """The 1-based line of ``key`` in ``[table]`` (or the ``index``-th ``[[table]]``); 0 if unknown."""
    current, count, header_line = "", -1, 0
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER_RE.match(line)
        if header:
            current = header.group(2)
            if current == table:
                count += 1
                if index is None or count == index:
                    header_line = number
            continue
        if current != table or (index is not None and count != index) or key is None:
            continue
        found = _KEY_RE.match(line)
        if found and found.group(1).strip('"') == key:
            return number
    return header_line


class _Reader:
    """Walks the parsed TOML, raising ConfigError at the right line."""

    def __init__(self, text: str, path: Path, env: Mapping[str, str], secrets: bool = True) -> None:
        self.text, self.path, self.env, self.secrets = text, path, env, secrets

    def fail(self, where: tuple[str, int | None, str | None], message: str, hint: str = "") -> ConfigError:
        table, index, key = where
        line = _key_line(self.text, table, index, key)
        name = table if index is None else f"{table}[{index}]"
        if key:
            name += f".{key}"
        location = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{location}: {name}: {message}", hint)

    def table(self, data: Mapping[str, Any], where: tuple[str, int | None, str | None],
              allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                close = sorted(allowed)
                raise self.fail((where[0], where[1], key), "unknown key", f"known keys: {', '.join(close)}")

    def expand(self, raw: str, where: tuple[str, int | None, str | None]) -> str:
        if "${" not in raw:
            return raw
        missing = [m.group(1) for m in _VAR_RE.finditer(raw) if m.group(1) not in self.env]
        if missing and not self.secrets:
            return Unresolved.of("", raw)
        if missing:
            raise self.fail(where, f"environment variable {missing[0]} is not set",
                            f"export {missing[0]}, or put it in the service's EnvironmentFile")
        return Secret.of(_VAR_RE.sub(lambda m: self.env[m.group(1)], raw), raw)

    def get(self, data: Mapping[str, Any], where: tuple[str, int | None, str], kind: type,
            default: Any = None, required: bool = False) -> Any:
        key = where[2]
        if key not in data:
            if required:
                raise self.fail((where[0], where[1], None), f"missing required key {key!r}",
                                f"add {key} = … to this table")
            return default
        value = data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(where, f"expected {kind.__name__}, got {type(value).__name__} {value!r}",
                            _TYPE_HINTS.get(kind, ""))
        if isinstance(value, str):
            value = self.expand(value, where)
        return value

    def convert(self, data: Mapping[str, Any], where: tuple[str, int | None, str],
                parse: Callable[[object], Any], default: Any) -> Any:
        raw = self.get(data, where, str, None)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as error:
            message, _, hint = str(error).partition("; ")
            raise self.fail(where, message, hint or "check the value") from None

    def strings(self, data: Mapping[str, Any], where: tuple[str, int | None, str]) -> tuple[str, ...]:
        value = data.get(where[2], [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, "expected a list of strings", 'write it like ["a", "b"]')
        return tuple(value)

    def positive(self, data: Mapping[str, Any], where: tuple[str, int | None, str], default: int) -> int:
        value: int = self.get(data, where, int, default)
        if value < 1:
            raise self.fail(where, f"must be at least 1, got {value}", "write a whole number of 1 or more")
        return value


_TYPE_HINTS: dict[type, str] = {
    str: 'quote it: key = "value"; durations and sizes are strings too ("5m", "10MB")',
    int: "write a whole number without quotes",
    bool: "write true or false without quotes",
    list: 'write a list like ["a", "b"]',
}

_TOP = {"monitor", "http", "feeds", "channels", "web", "delivery", "stories"}

_MONITOR = {"rules", "database", "poll_interval", "min_interval", "max_interval", "max_item_age",
            "stale_after", "stop_timeout", "log_format", "parse_workers", "full_text", "retention"}
_HTTP = {"timeout", "max_bytes", "concurrency", "per_host", "user_agent", "max_redirects", "robots_ttl"}
_FEED = {"name", "url", "interval", "tags", "full_text", "full_text_selector", "title", "html_url", "publisher",
         "tier"}
_CHANNEL_COMMON = {"name", "type", "min_severity", "tags", "quiet_hours", "timezone", "group_window", "group_max"}
_CHANNEL_OPTIONS: dict[str, set[str]] = {
    "console": set(),
    "webhook": {"url", "secret", "timeout"},
    "slack": {"url", "timeout"},
    "email": {"host", "port", "starttls", "tls", "ca_file", "username", "password", "from", "to", "digest",
              "timeout"},
}


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _database(value: str, base: Path) -> str:
    """A SQLAlchemy URL; a relative SQLite path resolves against the config file's folder."""
    prefix = "sqlite:///"
    if value.startswith(prefix) and value != prefix and not value.startswith(prefix + "/"):
        rest = value[len(prefix):]
        if rest != ":memory:":
            return prefix + str(_resolve(base, rest))
    return value


def _monitor(reader: _Reader, data: Mapping[str, Any], base: Path) -> dict[str, Any]:
    reader.table(data, ("monitor", None, None), _MONITOR)

    def w(key: str) -> tuple[str, None, str]:
        return ("monitor", None, key)

    out: dict[str, Any] = {
        "rules": _resolve(base, reader.get(data, w("rules"), str, "rules")),
        "database": _database(reader.get(data, w("database"), str, "sqlite:///monitor.db"), base),
    }
    for key, default in (("poll_interval", 300.0), ("min_interval", 60.0), ("max_interval", 3600.0),
                         ("max_item_age", 172800.0), ("stale_after", 172800.0), ("stop_timeout", 10.0)):
        out[key] = reader.convert(data, w(key), parse_duration, default)
    if out["min_interval"] > out["max_interval"]:
        raise reader.fail(w("min_interval"), "is longer than max_interval", "swap the two values")
    workers: int = reader.get(data, w("parse_workers"), int, 2)
    if not 0 <= workers <= 64:
        raise reader.fail(w("parse_workers"), f"must be between 0 and 64, got {workers}",
                          "0 parses in the daemon's own process; one per core is plenty")
    out["parse_workers"] = workers
    log_format = reader.get(data, w("log_format"), str, "text")
    if log_format not in ("text", "json"):
        raise reader.fail(w("log_format"), f"unknown log format {log_format!r}", 'use "text" or "json"')
    out["log_format"] = log_format
    out["full_text"] = reader.get(data, w("full_text"), bool, False)
    out["retention"] = _retention(reader, data)
    return out


MIN_RETENTION = 86400.0


def parse_retention(value: object) -> float | None:
    """``[monitor] retention`` (or ``db prune --older-than``): "off", or a duration of a day or more."""
    if isinstance(value, str) and value.strip().lower() == "off":
        return None
    seconds = parse_duration(value)
    if seconds < MIN_RETENTION:
        raise ValueError(f"{value!r} is shorter than a day; write it in days, like \"180d\", or \"off\"")
    return seconds


def retention_problem(retention: float | None, story_window: float) -> tuple[str, str] | None:
    """Why ``retention`` cannot be (message, hint), or None: shorter than ``[stories] window``, it would
    delete items while later reports could still join their stories, which would then alert again."""
    if retention is None or retention >= story_window:
        return None
    from monitor.units import format_duration

    window = format_duration(story_window)
    return (f"{format_duration(retention)} is shorter than [stories] window ({window}): items would go while "
            "new reports may still join their stories, and those would alert again",
            f'make it at least {window}; "180d" is usual')


def _retention(reader: _Reader, data: Mapping[str, Any]) -> float | None:
    retention: float | None = reader.convert(data, ("monitor", None, "retention"), parse_retention, None)
    return retention


def _http(reader: _Reader, data: Mapping[str, Any]) -> HttpSettings:
    reader.table(data, ("http", None, None), _HTTP)

    def w(key: str) -> tuple[str, None, str]:
        return ("http", None, key)

    return HttpSettings(
        timeout=reader.convert(data, w("timeout"), parse_duration, 20.0),
        max_bytes=reader.convert(data, w("max_bytes"), parse_size, 10_000_000),
        concurrency=reader.positive(data, w("concurrency"), 32),
        per_host=reader.positive(data, w("per_host"), 4),
        user_agent=reader.get(data, w("user_agent"), str, DEFAULT_USER_AGENT),
        max_redirects=reader.positive(data, w("max_redirects"), 5),
        robots_ttl=reader.convert(data, w("robots_ttl"), parse_duration, 3600.0),
    )


def _array(reader: _Reader, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise reader.fail((key, None, None), f"{key} must be an array of tables", f"write each as [[{key}]]")
    return value


def _name(reader: _Reader, data: Mapping[str, Any], table: str, index: int, seen: set[str]) -> str:
    name: str = reader.get(data, (table, index, "name"), str, required=True)
    if not _NAME_RE.match(name):
        raise reader.fail((table, index, "name"), f"invalid name {name!r}",
                          "use letters (of any script), digits, '-', '_' and '.', starting with a letter or digit")
    if name in seen:
        raise reader.fail((table, index, "name"), f"duplicate name {name!r}", "every name must be unique")
    seen.add(name)
    return name


def _selector(reader: _Reader, data: Mapping[str, Any], index: int) -> str:
    where = ("feeds", index, "full_text_selector")
    selector: str = reader.get(data, where, str, "")
    if selector:
        try:
            GenericTranslator().css_to_xpath(selector)
        except SelectorError as error:
            raise reader.fail(where, f"not a CSS selector: {error}",
                              'write one like "article .body" or "div#content > p"') from None
    return selector


def _feeds(reader: _Reader, items: list[Mapping[str, Any]], full_text: bool) -> tuple[FeedSpec, ...]:
    feeds, seen = [], set[str]()
    for index, data in enumerate(items):
        reader.table(data, ("feeds", index, None), _FEED)
        name = _name(reader, data, "feeds", index, seen)
        url: str = reader.get(data, ("feeds", index, "url"), str, required=True)
        if not isinstance(url, Unresolved) and urlsplit(reveal(url)).scheme not in ("http", "https"):
            raise reader.fail(("feeds", index, "url"), "not an http(s) URL", "feeds are fetched over http or https")
        interval = reader.convert(data, ("feeds", index, "interval"), parse_duration, None)
        wants_text = reader.get(data, ("feeds", index, "full_text"), bool, full_text)
        feeds.append(FeedSpec(name, url, interval, reader.strings(data, ("feeds", index, "tags")), wants_text,
                              _selector(reader, data, index), reveal(reader.get(data, ("feeds", index, "title"),
                                                                                str, "")),
                              reveal(reader.get(data, ("feeds", index, "html_url"), str, "")),
                              reveal(reader.get(data, ("feeds", index, "publisher"), str, "")).strip().lower(),
                              _tier(reader, data, index)))
    return tuple(feeds)


def _tier(reader: _Reader, data: Mapping[str, Any], index: int) -> str:
    where = ("feeds", index, "tier")
    tier: str = reveal(reader.get(data, where, str, "other"))
    if tier not in TIERS:
        raise reader.fail(where, f"unknown tier {tier!r}", f"write one of {', '.join(TIERS)}")
    return tier


def _stories(reader: _Reader, data: Mapping[str, Any]) -> float:
    """``[stories] window``: how long an item stays a candidate for the stories of new items."""
    reader.table(data, ("stories", None, None), {"window"})
    window: float = reader.convert(data, ("stories", None, "window"), parse_duration, STORY_WINDOW)
    if window <= 0:
        raise reader.fail(("stories", None, "window"), "must be longer than zero", 'write e.g. "96h"')
    return window


_QUIET_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def _quiet_hours(reader: _Reader, data: Mapping[str, Any], index: int) -> tuple[int, int] | None:
    where = ("channels", index, "quiet_hours")
    value = reader.get(data, where, str, None)
    if value is None:
        return None
    found = _QUIET_RE.match(value.replace(" ", ""))
    if not found:
        raise reader.fail(where, f"{value!r} is not a time window", 'write it like "22:00-07:00" (24-hour clock)')
    hours1, minutes1, hours2, minutes2 = (int(g) for g in found.groups())
    return hours1 * 60 + minutes1, hours2 * 60 + minutes2


def _timezone(reader: _Reader, data: Mapping[str, Any], index: int) -> str:
    where = ("channels", index, "timezone")
    name: str = reader.get(data, where, str, "UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise reader.fail(where, f"unknown time zone {name!r}", 'use an IANA name such as "Europe/Tallinn"') from None
    return name


def _http_option(reader: _Reader, data: Mapping[str, Any], where: tuple[str, int, str]) -> Secret:
    url = reader.get(data, where, str, required=True)
    if not isinstance(url, Unresolved) and urlsplit(reveal(url)).scheme not in ("http", "https"):
        raise reader.fail(where, "not an http(s) URL", "give the full URL, e.g. https://hooks.example.org/…")
    return url if isinstance(url, Secret) else Secret.of(url)


def _email_options(reader: _Reader, data: Mapping[str, Any], index: int, base: Path) -> dict[str, Any]:
    def w(key: str) -> tuple[str, int, str]:
        return ("channels", index, key)

    starttls = reader.get(data, w("starttls"), bool, False)
    tls = reader.get(data, w("tls"), bool, False)
    if starttls and tls:
        raise reader.fail(w("tls"), "tls and starttls are both set", "tls = true is implicit TLS (port 465); "
                          "starttls = true upgrades a plain connection (port 587); choose one")
    to = reader.strings(data, w("to"))
    if not to:
        raise reader.fail(w("to"), "no recipients", 'write to = ["duty@example.org"]')
    username = reader.get(data, w("username"), str, None)
    password = reader.get(data, w("password"), str, None)
    if (username is None) != (password is None):
        raise reader.fail(w("password" if username else "username"), "username and password go together",
                          "set both for SMTP authentication, or neither")
    ca_file = reader.get(data, w("ca_file"), str, None)
    if ca_file is not None and not (starttls or tls):
        raise reader.fail(w("ca_file"), "ca_file without TLS", "set tls = true or starttls = true, or drop ca_file")
    return {"host": reader.get(data, w("host"), str, required=True),
            "port": reader.get(data, w("port"), int, 465 if tls else 587 if starttls else 25),
            "starttls": starttls, "tls": tls, "ca_file": _resolve(base, ca_file) if ca_file else None,
            "username": Secret.of(username) if username is not None else None,
            "password": Secret.of(password) if password is not None else None,
            "from": reader.get(data, w("from"), str, required=True), "to": to,
            "digest": reader.convert(data, w("digest"), parse_duration, None),
            "timeout": reader.convert(data, w("timeout"), parse_duration, 30.0)}


def _channel_options(reader: _Reader, data: Mapping[str, Any], index: int, kind: str,
                     base: Path) -> dict[str, Any]:
    if kind == "email":
        return _email_options(reader, data, index, base)
    if kind == "console":
        return {}
    options: dict[str, Any] = {"url": _http_option(reader, data, ("channels", index, "url")),
                               "timeout": reader.convert(data, ("channels", index, "timeout"), parse_duration, 10.0)}
    if kind == "webhook":
        secret = reader.get(data, ("channels", index, "secret"), str, None)
        options["secret"] = Secret.of(secret) if secret is not None and not isinstance(secret, Secret) else secret
    return options


def _channels(reader: _Reader, items: list[Mapping[str, Any]], base: Path) -> tuple[ChannelSpec, ...]:
    channels, seen = [], set[str]()
    for index, data in enumerate(items):
        name = _name(reader, data, "channels", index, seen)
        kind: str = reader.get(data, ("channels", index, "type"), str, required=True)
        if kind not in CHANNEL_TYPES:
            raise reader.fail(("channels", index, "type"), f"unknown channel type {kind!r}",
                              f"use one of {', '.join(CHANNEL_TYPES)}")
        reader.table(data, ("channels", index, None), _CHANNEL_COMMON | _CHANNEL_OPTIONS[kind])
        severity = reader.get(data, ("channels", index, "min_severity"), str, "info")
        if severity not in SEVERITIES:
            raise reader.fail(("channels", index, "min_severity"), f"unknown severity {severity!r}",
                              f"use one of {', '.join(SEVERITIES)}")
        group_window = reader.convert(data, ("channels", index, "group_window"), parse_duration, None)
        group_max = reader.positive(data, ("channels", index, "group_max"), 5) if group_window else None
        if group_window is None and "group_max" in data:
            raise reader.fail(("channels", index, "group_max"), "group_max without group_window",
                              'add group_window = "10m" to group bursts of one rule')
        channels.append(ChannelSpec(
            name, kind, severity, reader.strings(data, ("channels", index, "tags")),
            _channel_options(reader, data, index, kind, base), _quiet_hours(reader, data, index),
            _timezone(reader, data, index), group_window, group_max))
    return tuple(channels)


def _delivery(reader: _Reader, data: Mapping[str, Any]) -> DeliverySettings:
    reader.table(data, ("delivery", None, None), {"attempts", "backoff", "max_backoff"})
    return DeliverySettings(
        attempts=reader.positive(data, ("delivery", None, "attempts"), 8),
        backoff=reader.convert(data, ("delivery", None, "backoff"), parse_duration, 30.0),
        max_backoff=reader.convert(data, ("delivery", None, "max_backoff"), parse_duration, 3600.0))


def _web(reader: _Reader, data: Mapping[str, Any]) -> tuple[str, Secret | None]:
    """``listen`` and the dashboard's ``token``, which must come from the environment."""
    reader.table(data, ("web", None, None), {"listen", "token", "public_url"})
    listen = reader.get(data, ("web", None, "listen"), str, "")
    if listen:
        _, _, port = listen.rpartition(":")
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            raise reader.fail(("web", None, "listen"), f"{listen!r} is not host:port",
                              'write it like "127.0.0.1:9464" (loopback) or ":9464"')
    token = reader.get(data, ("web", None, "token"), str, None)
    if token is None:
        return listen, None
    if not isinstance(token, Secret):
        raise reader.fail(("web", None, "token"), "the token must come from the environment, not the file",
                          'write token = "${CRISIS_MONITOR_WEB_TOKEN}" and export that variable')
    if isinstance(token, Unresolved):
        return listen, token
    if len(token.reveal()) < 16 or any(c.isspace() for c in token.reveal()):
        raise reader.fail(("web", None, "token"), "the token must be at least 16 characters, without spaces",
                          "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'")
    return listen, token


def load(text: str, path: Path, env: Mapping[str, str], secrets: bool = True) -> Config:
    """The Config in ``text`` (read from ``path``, whose folder anchors relative paths).

    ``secrets=False`` is for commands that send nothing: a ``${VAR}`` that is not set is then
    an ``Unresolved`` empty value instead of an error, so a listing never needs a channel's secret.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"line (\d+)", str(error))
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise ConfigError(f"{where}: not valid TOML: {error}",
                          "check quotes, brackets and that every string is quoted") from None
    reader = _Reader(text, path, env, secrets)
    for key in data:
        if key not in _TOP:
            raise reader.fail((key, None, None), "unknown table or key",
                              f"known tables: {', '.join(sorted(_TOP))}")
    base = path.parent
    sections = {key: data.get(key, {}) for key in ("monitor", "http", "web", "delivery", "stories")}
    for key, section in sections.items():
        if not isinstance(section, dict):
            raise reader.fail((key, None, None), "must be a table", f"write it as [{key}]")
    listen, token = _web(reader, sections["web"])
    channels = _channels(reader, _array(reader, data, "channels"), base)
    if not channels:
        channels = (ChannelSpec("console", "console"),)
    monitor = _monitor(reader, sections["monitor"], base)
    feeds = _feeds(reader, _array(reader, data, "feeds"), monitor.pop("full_text"))
    window = _stories(reader, sections["stories"])
    if (problem := retention_problem(monitor["retention"], window)) is not None:
        raise reader.fail(("monitor", None, "retention"), *problem)
    return Config(path=path, http=_http(reader, sections["http"]), delivery=_delivery(reader, sections["delivery"]),
                  feeds=feeds, channels=channels, web_listen=listen, web_token=token,
                  web_public_url=_public_url(reader, sections["web"]), story_window=window, **monitor)


def _public_url(reader: _Reader, data: Mapping[str, Any]) -> str:
    """``[web] public_url``: where hubs reach this daemon's web endpoint (WebSub is off without it)."""
    where = ("web", None, "public_url")
    url: str = reader.get(data, where, str, "")
    if isinstance(url, Unresolved):
        return ""
    if url and (urlsplit(reveal(url)).scheme not in ("http", "https") or not urlsplit(reveal(url)).hostname):
        raise reader.fail(where, "not an http(s) URL", "give the address hubs reach, e.g. https://monitor.example.org")
    if url and not data.get("listen"):
        raise reader.fail(where, "public_url without listen",
                          'the WebSub callback is served on [web] listen: add listen = "127.0.0.1:9464"')
    return reveal(url).rstrip("/")


def find_config(explicit: str | None, env: Mapping[str, str]) -> Path:
    """``--config``, else ``$CRISIS_MONITOR_CONFIG``, else ./config.toml, else /etc/crisis-monitor/config.toml."""
    if explicit:
        return Path(explicit)
    if env.get("CRISIS_MONITOR_CONFIG"):
        return Path(env["CRISIS_MONITOR_CONFIG"])
    local = Path("config.toml")
    return local if local.is_file() else Path("/etc/crisis-monitor/config.toml")


def load_file(explicit: str | None = None, env: Mapping[str, str] | None = None, secrets: bool = True) -> Config:
    """Find, read and load the config file; ConfigError when it is missing or wrong. ``secrets``: as
    for ``load`` (False for commands that send nothing)."""
    env = os.environ if env is None else env
    path = find_config(explicit, env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file",
                          "pass --config PATH, set CRISIS_MONITOR_CONFIG, or copy the shipped config.toml") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}", "check the file's permissions and encoding") from None
    return load(text, path.resolve(), env, secrets)
