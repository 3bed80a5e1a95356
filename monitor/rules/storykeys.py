"""A rule file's story keys (issue 15) to a ``StoryPolicy``, each bad value reported at its file:line:col.

Pure. The keys are ``min_sources``, ``within``, ``tiers``, ``min_official``, ``updates``, ``cooldown``
and ``surge`` (DESIGN.md, "Stories"); a rule that sets none gets ``DEFAULT_POLICY`` (alert on the
first matching item of a story, ladder updates at 3, 10 and 30 publishers). ``surge`` is ``true``
(the defaults of ``SurgeSpec``), ``false`` (off, as when absent) or a mapping of ``SurgeSpec``'s fields.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import fields, replace
from typing import Any

import yaml

from monitor.rules import yamlsrc
from monitor.rules.filecheck import FileCheck
from monitor.stories.policy import DEFAULT_POLICY, TIERS, StoryPolicy
from monitor.stories.surge import SurgeSpec

STORY_KEYS = ("min_sources", "within", "tiers", "min_official", "updates", "cooldown", "surge")
SURGE_KEYS = tuple(f.name for f in fields(SurgeSpec))
_SURGE_DURATIONS = ("window", "cooldown")
_SURGE_MINIMUM = {"min_count": 1, "min_publishers": 1, "warmup": 0, "baseline_windows": 1}

Entries = dict[str, tuple[yaml.Node, yaml.Node]]


def _whole(check: FileCheck, node: yaml.Node, key: str, least: int) -> int | None:
    raw = yamlsrc.value(node)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= least:
        return raw
    check.fail(node, f"{key} must be a whole number of at least {least}, not {raw!r}",
               f"as in {key}: {max(least, 2)}")
    return None


def _tiers(check: FileCheck, node: yaml.Node) -> tuple[str, ...] | None:
    raw = yamlsrc.value(node)
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        check.fail(node, "tiers must be a list of tiers",
                   f"as in tiers: [official, wire]; tiers are {', '.join(TIERS)}")
        return None
    unknown = [name for name in names if name not in TIERS]
    for name in unknown:
        close = difflib.get_close_matches(name, TIERS, 1)
        check.fail(node, f"tiers: unknown tier {name!r}",
                   f"did you mean {close[0]!r}?" if close else f"tiers are {', '.join(TIERS)}")
    return None if unknown else tuple(t for t in TIERS if t in names)  # in TIERS' order, once each


def _updates(check: FileCheck, node: yaml.Node) -> tuple[int, ...] | None:
    raw = yamlsrc.value(node)
    rungs = raw if isinstance(raw, list) else None
    if rungs is None or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in rungs):
        check.fail(node, f"updates must be a list of publisher counts of at least 2, not {raw!r}",
                   "as in updates: [3, 10, 30]; [] sends no ladder updates")
        return None
    if any(a >= b for a, b in itertools.pairwise(rungs)):
        check.fail(node, f"updates must rise strictly, not {rungs}", f"as in updates: {sorted(set(rungs))}")
        return None
    return tuple(rungs)


def _surge(check: FileCheck, node: yaml.Node) -> SurgeSpec | None:
    raw = yamlsrc.value(node) if isinstance(node, yaml.ScalarNode) else None
    if isinstance(raw, bool):
        return SurgeSpec() if raw else None
    if not isinstance(node, yaml.MappingNode):
        check.fail(node, "surge must be true, false or a mapping of its settings",
                   f"as in surge: {{window: 1h, factor: 3, min_count: 5}}; keys: {', '.join(SURGE_KEYS)}")
        return None
    settings: dict[str, Any] = {}
    ok = True
    for key, (key_node, value_node) in check.mapping(node, "surge").items():
        value: Any = None
        if key not in SURGE_KEYS:
            close = difflib.get_close_matches(key, SURGE_KEYS, 1)
            check.fail(key_node, f"unknown key {key!r} in surge",
                       f"did you mean {close[0]!r}?" if close else f"surge keys are {', '.join(SURGE_KEYS)}")
        elif key in _SURGE_DURATIONS:
            value = check.duration(value_node, f"surge.{key}")
        elif key in _SURGE_MINIMUM:
            value = _whole(check, value_node, f"surge.{key}", _SURGE_MINIMUM[key])
        else:
            value = _fraction(check, value_node, key)
        ok = ok and value is not None
        settings[key] = value
    if not ok:
        return None
    spec = SurgeSpec(**settings)
    if spec.warmup > spec.baseline_windows:
        check.fail(node, f"surge.warmup {spec.warmup} is more than surge.baseline_windows {spec.baseline_windows}, "
                   "so the surge never fires", "lower warmup or raise baseline_windows")
        return None
    return spec


def _fraction(check: FileCheck, node: yaml.Node, key: str) -> float | None:
    """``factor`` (a number of at least 1) or ``max_p`` (a probability above 0, at most 1)."""
    number = check.number(node, f"surge.{key}")
    if number is None:
        return None
    if key == "factor" and number < 1:
        check.fail(node, f"surge.factor must be at least 1, not {number:g}", "a surge is a rise: as in factor: 3")
        return None
    if key == "max_p" and not 0 < number <= 1:
        check.fail(node, f"surge.max_p must be above 0 and at most 1, not {number:g}", "as in max_p: 0.001")
        return None
    return number


def story_policy(check: FileCheck, entries: Entries) -> StoryPolicy:
    """The policy the story keys among ``entries`` (a rule file's keys) state; a bad value is reported
    on ``check`` and leaves its default."""
    given: dict[str, Any] = {}
    for key in STORY_KEYS:
        if key not in entries:
            continue
        node = entries[key][1]
        value: Any
        if key in ("within", "cooldown"):
            value = check.duration(node, key)
        elif key in ("min_sources", "min_official"):
            value = _whole(check, node, key, 1 if key == "min_sources" else 0)
        elif key == "tiers":
            value = _tiers(check, node)
        elif key == "updates":
            value = _updates(check, node)
        else:
            value = _surge(check, node)
            if value is None:
                continue
        if value is not None:
            given[key] = value
    return replace(DEFAULT_POLICY, **given) if given else DEFAULT_POLICY
