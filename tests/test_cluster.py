"""Story clustering: which story an item joins, told by the reasons users would see."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.rules.engine import RuleSet
from monitor.stories import publisher as publisher_module
from monitor.stories.cluster import (
    Assignment,
    Signature,
    StoryIndex,
    decode,
    encode,
    publisher_of,
    signature,
)
from monitor.stories.evaluate import Labelled, alerts, bcubed, cluster, labelled_items, signatures
from monitor.types import Document
from tests.conftest import DATA

T0 = datetime(2025, 9, 19, 9, 0, tzinfo=UTC)
WINDOW = 96 * 3600.0
ESTONIA = ["russia", "estonia", "mig-31", "nato"]
WIRE = ("Three Russian MiG-31 fighter jets entered Estonian airspace near Vaindloo island on Friday "
        "without permission and stayed there for a total of 12 minutes, Estonia's foreign ministry said. "
        "The jets had no flight plans, their transponders were switched off and they had no two-way radio "
        "contact with Estonian air traffic control. Italian F-35 jets on NATO's air policing mission were "
        "scrambled to escort them out. Tallinn summoned Russia's charge d'affaires and handed him a note "
        "of protest, calling the incursion unprecedentedly brazen.")


def sig(title: str, body: str = "", *, url: str = "", guid: str = "", entities: list[str] | None = None,
        publisher: str = "", at: datetime = T0) -> Signature:
    doc = Document(id=guid or url or title, title=title, summary=body, url=url)
    return signature(doc, entities or [], publisher or publisher_of(url or "https://unknown.example/"), at)


def index_with(*stories: tuple[int, Signature]) -> StoryIndex:
    index = StoryIndex(WINDOW)
    for story, signed in stories:
        index.add(story, signed)
    return index


def test_the_first_item_starts_a_story() -> None:
    assert StoryIndex(WINDOW).assign(sig("Russian jets violate Estonian airspace", WIRE)) == Assignment(None, "new",
                                                                                                       0.0)


def test_exact_copies_by_guid_url_and_title() -> None:
    first = sig("Russian jets violate Estonian airspace for 12 minutes", WIRE,
                url="https://www.wire.example/world/estonia-jets/", guid="tag:wire.example,2025:estonia-jets-0919")
    index = index_with((7, first))
    same_guid = sig("Completely different headline here", "other text", guid="tag:wire.example,2025:estonia-jets-0919",
                    url="https://other.example/a")
    assert index.assign(same_guid) == Assignment(7, "guid", 1.0)
    # The same page with tracking parameters, www. and a trailing slash is the same URL.
    same_url = sig("Another headline entirely for it", "x", url="http://wire.example/world/estonia-jets?utm_source=rss")
    assert index.assign(same_url) == Assignment(7, "url", 1.0)
    # The same title with an outlet's suffix, other case and punctuation.
    same_title = sig("RUSSIAN JETS VIOLATE ESTONIAN AIRSPACE FOR 12 MINUTES | Daily Planet", "teaser",
                     url="https://planet.example/p/1")
    assert index.assign(same_title) == Assignment(7, "title", 1.0)


def test_short_guids_and_generic_titles_identify_nothing() -> None:
    first = sig("Live updates", "Markets rose on Monday as traders weighed central bank comments.", guid="12345",
                url="https://a.example/1")
    other = sig("Live updates", "A storm closed schools across the north of the country on Tuesday.", guid="12345",
                url="https://b.example/9")
    assert (first.guid, first.title_key) == ("", "")
    assert index_with((1, first)).assign(other).reason == "new"


def test_a_wire_copy_under_another_headline_is_a_near_duplicate() -> None:
    wire = sig("Russian jets violate Estonian airspace for 12 minutes", WIRE, url="https://wire.example/1",
               entities=ESTONIA)
    republished = sig("Estonia protests after MiG-31s stay 12 minutes",
                      f"By Staff Reporter and agencies. {WIRE} Read more: our coverage of the war in Ukraine. "
                      "We use cookies to improve your experience.", url="https://paper.example/story/88",
                      entities=ESTONIA)
    found = index_with((3, wire)).assign(republished)
    assert (found.story_id, found.reason) == (3, "near-duplicate")
    assert found.score >= 0.8


def test_the_same_event_in_other_words_joins_the_story() -> None:
    wire = sig("Russian jets violate Estonian airspace for 12 minutes", WIRE, url="https://wire.example/1",
               entities=ESTONIA)
    follow_up = sig("Estonia summons Russian envoy over 12-minute MiG-31 incursion",
                    "Estonia summoned Russia's charge d'affaires on Friday after three MiG-31 fighter jets "
                    "spent 12 minutes in Estonian airspace near Vaindloo, and NATO F-35s escorted them out.",
                    url="https://daily.example/2", entities=ESTONIA, at=T0 + timedelta(hours=5))
    found = index_with((3, wire)).assign(follow_up)
    assert (found.story_id, found.reason) == (3, "same-event")


def test_distinct_events_of_one_day_stay_apart() -> None:
    estonia = sig("Russian jets violate Estonian airspace for 12 minutes", WIRE, url="https://wire.example/1",
                  entities=ESTONIA)
    poland = sig("Poland shoots down Russian drones over its territory",
                 "Polish and allied jets shot down several Russian drones that crossed into Polish airspace "
                 "overnight during an attack on western Ukraine, the Polish military said, and airports in "
                 "Warsaw and Rzeszow were closed for several hours.",
                 url="https://wire.example/2", entities=["poland", "russia", "ukraine", "drone"],
                 at=T0 + timedelta(hours=2))
    found = index_with((3, estonia)).assign(poland)
    assert found.reason == "new"


GENERIC = ["military-aircraft-generic", "aircraft-generic"]


def test_incidents_sharing_only_generic_entities_stay_apart() -> None:
    # Jets over two places outside the gazetteer: "aircraft" is in nearly every crisis report, so the
    # entities alone would have joined them (Jaccard 1).
    one = sig("Fighter jets seen over Narva-Joesuu beach", "Residents of Narva-Joesuu filmed two fighter jets "
              "flying low over the beach on Tuesday evening.", url="https://a.example/1", entities=GENERIC)
    other = sig("Military aircraft circles Kuressaare port", "A military aircraft circled the port of Kuressaare "
                "several times on Tuesday, the harbour master said.", url="https://b.example/2", entities=GENERIC,
                at=T0 + timedelta(hours=1))
    assert index_with((1, one)).assign(other).reason == "new"
    # ... and a specific entity in common is what the entity term counts, the generic ones barely.
    finland, latvia = [*GENERIC, "russia", "finland"], [*GENERIC, "russia", "latvia"]
    fi = sig("Finland suspects Russian aircraft violated airspace off Porvoo", "Finland's defence ministry said a "
             "Russian military aircraft had violated Finnish airspace off Porvoo for about a minute.",
             url="https://a.example/3", entities=finland)
    lv = sig("Russian military helicopter crosses into Latvian airspace near Liepaja", "A Russian military "
             "helicopter briefly crossed into Latvian airspace near Liepaja, the armed forces said.",
             url="https://b.example/4", entities=latvia, at=T0 + timedelta(hours=5))
    assert index_with((1, fi)).assign(lv).reason == "new"
    fi_again = sig("Porvoo: Finnish border guard investigates Russian overflight", "The border guard opened an "
                   "investigation after a Russian military aircraft flew into Finnish airspace off Porvoo.",
                   url="https://c.example/5", entities=finland, at=T0 + timedelta(hours=2))
    assert index_with((1, fi), (2, lv)).assign(fi_again).story_id == 1


def test_prune_bounds_the_index_to_the_window() -> None:
    index = StoryIndex(WINDOW)
    for hour in range(200):
        index.add(hour, sig(f"Report number {hour} about the regional council budget", f"text {hour} " * 5,
                            url=f"https://a.example/{hour}", at=T0 + timedelta(hours=hour)))
        index.prune(T0 + timedelta(hours=hour))
        assert len(index) <= 97  # the items of the last 96 hours, both ends included
    assert len(index) == 97
    late = T0 + timedelta(hours=199 + 97)
    assert index.prune(late) == 97 and len(index) == 0
    # Nothing is left behind in the lookup tables either.
    assert index.assign(sig("Report number 150 about the regional council budget", url="https://a.example/150",
                            at=late)).reason == "new"


def test_candidates_older_than_the_window_are_ignored_before_prune() -> None:
    old = sig("Russian jets violate Estonian airspace for 12 minutes", WIRE, url="https://wire.example/1")
    copy = replace(old, seen_at=T0 + timedelta(seconds=WINDOW + 1))
    assert index_with((1, old)).assign(copy).reason == "new"
    assert index_with((1, old)).assign(replace(old, seen_at=T0 + timedelta(seconds=WINDOW))).reason == "guid"


def test_ties_go_to_the_lowest_story_id() -> None:
    first = sig("Russian jets violate Estonian airspace for 12 minutes", WIRE, url="https://wire.example/1")
    assert index_with((9, first), (4, first), (6, first)).assign(first).story_id == 4


CORPUS = [
    ("Russian jets violate Estonian airspace for 12 minutes", WIRE, ESTONIA),
    ("Estonia protests after MiG-31s stay 12 minutes", WIRE[:300], ESTONIA),
    ("Estonia summons Russian envoy over incursion", "Estonia summoned Russia's envoy after MiG-31 jets "
     "spent 12 minutes in its airspace near Vaindloo.", ESTONIA),
    ("Poland shoots down Russian drones", "Polish and allied jets shot down several Russian drones that "
     "crossed into Polish airspace overnight.", ["poland", "russia", "drone"]),
    ("Drones shot down over Poland", "Several Russian drones were shot down over Poland overnight, "
     "Warsaw said.", ["poland", "russia", "drone"]),
    ("Council approves school budget", "The regional council approved the school budget on Monday.", []),
]


POOL = ["russia", "poland", "estonia", "nato", "mig-31", "aircraft-generic", "military-aircraft-generic",
        "drone-generic", "military-drone"]


@settings(max_examples=80, deadline=None)
@given(one=st.frozensets(st.sampled_from(POOL)), other=st.frozensets(st.sampled_from(POOL)),
       hours=st.integers(0, 30))
def test_the_score_is_symmetric_and_generic_entities_alone_never_add(one: frozenset[str], other: frozenset[str],
                                                                     hours: int) -> None:
    # Which item came first does not change how alike two items are (so the order of arrival cannot either).
    a = sig("Jets seen over the coast on Tuesday", "Residents said two jets flew low over the coast.",
            url="https://a.example/1", entities=sorted(one))
    b = sig("Aircraft over the coast alarms residents", "Two aircraft flew low over the coast, residents said.",
            url="https://b.example/2", entities=sorted(other), at=T0 + timedelta(hours=hours))
    forth, back = index_with((1, a)).assign(b).score, index_with((1, replace(b, seen_at=T0))).assign(
        replace(a, seen_at=T0 + timedelta(hours=hours))).score
    assert forth == pytest.approx(back, abs=1e-9)
    # Generic entities ("jets", "drones") alone score as no entities at all: the cosine alone.
    plain = index_with((1, replace(a, entities=frozenset()))).assign(replace(b, entities=frozenset())).score
    if all(e.endswith("-generic") or e == "military-drone" for e in one | other):
        assert forth == pytest.approx(plain, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(len(CORPUS))), stories=st.lists(st.integers(1, 4), min_size=len(CORPUS),
                                                                     max_size=len(CORPUS)),
       query=st.integers(0, len(CORPUS) - 1))
def test_the_decision_does_not_depend_on_insertion_order(order: list[int], stories: list[int], query: int) -> None:
    signed = [sig(title, body, url=f"https://o{n}.example/{n}", entities=ents, at=T0 + timedelta(minutes=n))
              for n, (title, body, ents) in enumerate(CORPUS)]
    probe = replace(signed[query], guid="", url_key="", title_key="", seen_at=T0 + timedelta(hours=1))
    candidates = [(stories[n], signed[n]) for n in range(len(CORPUS)) if n != query]
    in_order = index_with(*candidates).assign(probe)
    shuffled = index_with(*(candidates[i] for i in order if i < len(candidates))).assign(probe)
    assert shuffled == in_order


@settings(max_examples=80, deadline=None)
@given(title=st.text(max_size=80), body=st.text(max_size=400),
       url=st.sampled_from(["", "https://a.example/x?utm_x=1"]),
       entities=st.frozensets(st.sampled_from([*ESTONIA, "pölska", "ümlaut"]), max_size=4))
def test_encode_decode_round_trip(title: str, body: str, url: str, entities: frozenset[str]) -> None:
    signed = signature(Document(id="guid-of-some-length", title=title, summary=body, url=url), entities,
                       "bbc.co.uk", T0)
    assert decode(encode(signed)) == signed


@pytest.mark.parametrize("data", [b"", b"\x00\x01", b"\x02" + b"\x00" * 20, encode(sig("a b c d e", WIRE))[:-3]])
def test_decode_refuses_what_is_not_a_signature(data: bytes) -> None:
    with pytest.raises(ValueError, match="signature"):
        decode(data)


@pytest.mark.parametrize(("url", "configured", "expected"), [
    ("https://news.bbc.co.uk/2/hi/europe/1.stm", None, "bbc.co.uk"),
    ("https://www.bbc.co.uk/news/world-europe-1", None, "bbc.co.uk"),
    ("https://feeds.reuters.com/reuters/worldNews", None, "reuters.com"),
    ("https://www.reuters.com/world/europe/", "", "reuters.com"),
    ("https://edition.cnn.com/x", "  CNN  ", "CNN"),
    ("https://someone.github.io/feed.xml", None, "someone.github.io"),  # private suffix: each site its own
    ("https://err.ee/1", None, "err.ee"),
    ("http://127.0.0.1:8080/feed.xml", None, "127.0.0.1"),
    ("http://localhost:8000/a", None, "localhost"),
    ("not a url", None, ""),
])
def test_publisher_of(url: str, configured: str | None, expected: str) -> None:
    assert publisher_of(url, configured) == expected


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the public-suffix list tried to use the network")

    for name in ("create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    for variable in ("HOME", "XDG_CACHE_HOME", "TLDEXTRACT_CACHE"):
        monkeypatch.setenv(variable, str(tmp_path / "nowhere"))
    publisher_module._suffixes.cache_clear()
    yield
    publisher_module._suffixes.cache_clear()


def test_the_public_suffix_list_is_read_offline(no_network: None, tmp_path: Path) -> None:
    assert publisher_of("https://news.bbc.co.uk/x") == "bbc.co.uk"
    assert publisher_of("https://www.lrt.lt/naujienos") == "lrt.lt"
    assert not (tmp_path / "nowhere").exists()  # nothing was cached either


# The labelled set: real-looking syndication (tests/data/stories_eval.yaml, measured by bench/stories_eval.py).

@pytest.fixture(scope="module")
def labelled(rule_set: RuleSet) -> dict[str, list[Labelled]]:
    items = labelled_items(yaml.safe_load((DATA / "stories_eval.yaml").read_text(encoding="utf-8")), rule_set)
    return {half: [item for item in items if item.half == half] for half in ("tune", "held-out")}


def _stories(part: list[Labelled]) -> list[int]:
    return cluster(signatures(part), WINDOW)


def test_the_labelled_set_is_what_it_says(labelled: dict[str, list[Labelled]]) -> None:
    everything = [item for part in labelled.values() for item in part]
    assert len(everything) >= 250 and len({item.event for item in everything}) >= 40
    assert not {i.event for i in labelled["tune"]} & {i.event for i in labelled["held-out"]}


def test_quality_floor_on_the_tune_half(labelled: dict[str, list[Labelled]]) -> None:
    part = labelled["tune"]
    scores = bcubed([item.event for item in part], _stories(part))
    assert scores.precision >= 0.9 and scores.recall >= 0.9, scores


@pytest.mark.xfail(strict=True, reason="measured B-cubed P 0.914, R 0.885 on the held-out half: follow-ups in other "
                   "words and languages that share few gazetteer entities stay apart, Petrobaltic joins Estonia's "
                   "story and Lithuania's Article 4 request the balloons of the day before")
def test_quality_floor_on_the_held_out_half(labelled: dict[str, list[Labelled]]) -> None:
    part = labelled["held-out"]
    scores = bcubed([item.event for item in part], _stories(part))
    assert scores.precision >= 0.9 and scores.recall >= 0.9, scores


_KNOWN_MERGES = pytest.mark.xfail(strict=True, reason="merged: same night or same day, and the text names the other")


@pytest.mark.parametrize(("half", "one", "other"), [
    ("tune", "pl-drones-shot-down-0910", "pl-drone-hrubieszow-0912"),  # drones into Poland, two days apart
    ("tune", "pl-drones-shot-down-0910", "pl-drone-lublin-0917"),  # ... and a week apart
    ("tune", "pl-drones-shot-down-0910", "ua-west-attack-0910"),  # the same night, the same drones' attack
    ("tune", "dk-copenhagen-airport-0922", "dk-aalborg-airport-0925"),  # Danish airports, two days apart
    ("tune", "lavrov-real-war-0925", "meshkov-it-will-be-war-0926"),  # two Russian war threats, a day apart
    ("tune", "nato-eastern-sentry-0912", "uk-typhoons-poland-0915"),
    ("tune", "dk-copenhagen-airport-0922", "no-oslo-airport-0923"),  # airport drones, a night apart
    ("held-out", "lt-article4-request-1006", "lv-article4-request-1007"),  # Article 4 by two states, a day apart
    ("held-out", "ee-mig31-incursion-0919", "ee-budget-0919"),  # Estonia, one day
    ("held-out", "trump-shoot-down-0923", "sikorski-un-shoot-it-down-0922"),
    ("held-out", "ee-mig31-incursion-0919", "nac-article4-estonia-0923"),
    pytest.param("held-out", "ee-mig31-incursion-0919", "pl-petrobaltic-overflight-0919", marks=_KNOWN_MERGES),
    pytest.param("held-out", "lt-balloons-vilnius-1005", "lt-article4-request-1006", marks=pytest.mark.xfail(
        strict=True, reason="merged (score 0.39): the next day's Article 4 request over the same incursions")),
    # batch 2, written after the thresholds were chosen
    ("held-out", "pl-drones-zamosc-1124", "pl-drone-przemysl-1201"),  # drones crash in Poland, a week apart
    ("held-out", "ee-il20-vaindloo-1127", "pl-su30-baltic-1127"),  # Estonia and Poland, one day, one names the other
    ("held-out", "fi-airspace-porvoo-1126", "lv-helicopter-liepaja-1126"),  # one afternoon, Russia and "aircraft"
])
def test_different_events_that_share_a_rule_and_entities_stay_apart(
        labelled: dict[str, list[Labelled]], half: str, one: str, other: str) -> None:
    part = labelled[half]
    events_of: dict[int, set[str]] = {}
    for item, story in zip(part, _stories(part), strict=True):
        events_of.setdefault(story, set()).add(item.event)
    assert not [story for story, events in events_of.items() if {one, other} <= events]


def test_clustering_saves_alerts_on_the_labelled_set(labelled: dict[str, list[Labelled]]) -> None:
    part = labelled["tune"] + labelled["held-out"]
    part.sort(key=lambda item: item.seen_at)
    before, after = alerts(part, _stories(part))
    events = len({item.event for item in part if item.rules})
    assert before > 5 * events and after < 3 * events
