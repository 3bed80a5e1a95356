"""What of an item story clustering compares: its signature, and how a signature is stored.

Pure: no I/O and no clock (``seen_at`` is given). Everything here is the same on every machine
and in every process (no salted ``hash()``, a fixed MinHash seed), so daemons sharing one store
compute the same signature of the same item.

A signature holds the keys of exact copies (guid, canonical URL, normalised title), the MinHash
of the item's word shingles (near-duplicates), and a hashed, L2-normalised bag of words of its
title and lead (the same event told in other words), with the gazetteer entities the rules found.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from hashlib import blake2b
from itertools import chain, repeat
from operator import mul
from typing import TYPE_CHECKING, Any

from monitor.dedupe import canonical_url
from monitor.text import readable_text, token_form
from monitor.types import Document, iso

if TYPE_CHECKING:
    from datasketch import LeanMinHash, MinHash

NUM_PERM = 128  # MinHash permutations: the LSH bands are cut from these
MINHASH_SEED = 20250919  # fixed: every daemon must draw the same permutations
SHINGLE = 3  # words per shingle
SHINGLE_TOKENS = 120  # tokens of the body shingled: the wire text's first paragraphs, not a long tail
LEAD_TOKENS = 60  # tokens of the lead that go into the features beside the title
TITLE_WEIGHT = 2  # a title word counts as this many lead words
N_FEATURES = 1 << 20  # hashed feature space (the hashing trick, as scikit-learn's HashingVectorizer)
MIN_TITLE_TOKENS = 4  # a shorter title ("Live updates", "Breaking") identifies no story
_RAW_LIMIT = 1600  # characters of the body read: the shingled and lead tokens lie inside (~8 a token)
# What outlets wrap wire copy in: bylines, and sentences with "read more" links, cookie and newsletter notes.
_BYLINE_RE = re.compile(r"(?:^|(?<=[.!?…] ))By [^.!?…]{0,60}[.!?…]")
_BOILERPLATE = ("read more", "cookie", "newsletter", "subscribe", "sign up", "all rights reserved", "copyright",
                "click here", "follow us", "lesen sie auch", "mehr zum thema", "lire aussi", "czytaj także",
                "читайте также")
_BOILERPLATE_RE = re.compile(r"\b(?:" + "|".join(_BOILERPLATE) + r")")  # on lower-cased text
_SENTENCE_END_RE = re.compile(r"[.!?…]")
_GENERIC_TITLES = frozenset({"live updates", "breaking news", "latest news", "news in brief", "the latest",
                             "morning briefing", "evening briefing", "news summary", "top stories"})
# Words that carry no event: function words of the languages the rules cover, and the
# boilerplate outlets wrap copy in (bylines, "read more", cookie notes).
_STOPWORD_TEXT = """
a an the and or but of in on at to for from by with as is are was were be been has have had it its
this that these those he she they we you i his her their our not no than then there which who what
when where will would could should can may might said says say also after before over into about
more most new news read full story article click here cookie cookies privacy policy subscribe
newsletter sign up share copyright rights reserved reporting editing writing agency agencies
photo video file image min ago updated published
der die das den dem des ein eine einer eines und oder aber von im in am an auf zu zur zum fur mit
als ist sind war waren wird wurde wurden hat haben nach vor uber bei aus sich nicht auch es sie er
le la les un une des du de et ou au aux en dans sur pour par avec est sont a ete qui que ne pas
plus selon
w z i na do sie nie ze to o po za od jest sa jak ktory ktora ktore oraz
и в во не что на с со по к из за от о у же а но для это как был была были
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Signature:
    """What story clustering knows of one item.

    ``guid`` is empty when the item's id is too short to be unique across feeds;
    ``title_key`` when its title is too short or generic to identify a story;
    ``minhash`` holds the ``NUM_PERM`` MinHash values (uint32, little-endian) of the item's word
    shingles, empty when it has too few words; ``features`` are (index, weight) pairs sorted by
    index, of unit length (weights are float32 values, so they survive ``encode``).
    """

    guid: str
    url_key: str
    title_key: str
    minhash: bytes
    features: tuple[tuple[int, float], ...]
    entities: frozenset[str]
    publisher: str
    seen_at: datetime


@cache
def _permutations() -> Any:
    # Drawn once per process from the fixed seed; every MinHash shares them.
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED).permutations


def new_minhash() -> MinHash:
    """An empty MinHash of this module's scheme (permutations drawn once per process)."""
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, hashfunc=zlib.crc32, permutations=_permutations(),
                   scheme="affine32")


def stored_minhash(hashvalues: bytes) -> LeanMinHash:
    """The MinHash a signature holds, for an LSH index (a LeanMinHash: no permutations to parse)."""
    import numpy as np
    from datasketch import LeanMinHash

    return LeanMinHash(seed=MINHASH_SEED, hashvalues=np.frombuffer(hashvalues, dtype="<u4"), scheme="affine32")


def _usable_guid(guid: str) -> str:
    # A short id ("1234", "item-7") repeats across feeds; only a long one names one text.
    return guid if len(guid) >= 12 and not guid.isdigit() else ""


def _title_tokens(title: str) -> list[str]:
    """The title's tokens without an outlet's suffix (``… | Reuters``, ``… - BBC News``)."""
    for separator in (" | ", " - ", " – ", " — "):
        head, found, tail = title.rpartition(separator)
        if found and head and len(token_form(tail).split()) <= 3:
            title = head
            break
    return token_form(title).split()


def title_key(title: str) -> str:
    """A hash of the normalised title, or ``""`` when the title cannot identify a story."""
    return _key_of(_title_tokens(readable_text(title)))


def _key_of(words: list[str]) -> str:
    joined = " ".join(words)
    if len(words) < MIN_TITLE_TOKENS or joined in _GENERIC_TITLES:
        return ""
    return blake2b(joined.encode(), digest_size=8).hexdigest()


def _body(doc: Document) -> str:
    # The longer of summary and content: a teaser-only feed has only its summary.
    body = doc.content if len(doc.content) > len(doc.summary) else doc.summary
    return without_boilerplate(readable_text(body[:_RAW_LIMIT]))


def without_boilerplate(text: str) -> str:
    """``text`` without a leading byline and without the sentences that hold boilerplate words."""
    if "By " in text:
        text = _BYLINE_RE.sub(" ", text)
    kept: list[str] = []
    done = 0  # text before this offset is dealt with
    # Lower-casing keeps offsets (but for a few letters outside ASCII, not in these words): searching
    # lower-cased text is several times faster than an IGNORECASE search.
    lowered = text.lower()
    if len(lowered) != len(text) or not any(word in lowered for word in _BOILERPLATE):  # ``in`` is fast
        return text
    for found in _BOILERPLATE_RE.finditer(lowered):
        if found.start() < done:
            continue  # in a sentence already dropped
        start = max(done, max(text.rfind(mark, done, found.start()) for mark in ".!?…") + 1)
        end = _SENTENCE_END_RE.search(text, found.end())
        kept.append(text[done:start])
        done = end.end() if end else len(text)
    kept.append(text[done:])
    return " ".join(kept) if len(kept) > 1 else text


def minhash_of(tokens: list[str]) -> bytes:
    """The MinHash values of the word shingles of ``tokens`` (``b""`` if there are too few)."""
    if len(tokens) < SHINGLE:
        return b""
    shingles = {f"{a} {b} {c}".encode() for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)}
    minhash = new_minhash()
    minhash.update_batch(shingles)
    return bytes(minhash.hashvalues.astype("<u4").tobytes())


@lru_cache(maxsize=65536)
def _feature_index(word: str) -> int:
    return zlib.crc32(word.encode()) % N_FEATURES


def features_of(title: list[str], lead: list[str]) -> tuple[tuple[int, float], ...]:
    """The hashed, L2-normalised bag of words of a title and lead, stop words left out.

    Term counts are damped (1 + log tf) so a word repeated in a long lead does not outweigh the
    rest; indices are CRC-32 of the word modulo ``N_FEATURES`` (deterministic everywhere).
    """
    stop = _STOPWORDS
    words = [word for word in chain(*[title] * TITLE_WEIGHT, lead) if len(word) > 1 and word not in stop]
    counts = Counter(map(_feature_index, words))
    if not counts:
        return ()
    indices = sorted(counts)
    weights = [1.0 + math.log(counts[index]) for index in indices]
    norm = math.sqrt(math.fsum(w * w for w in weights))
    # float32 values: what encode stores, so a decoded signature equals the original.
    rounded = array("f", [weight / norm for weight in weights]).tolist()
    return tuple(zip(indices, rounded, strict=True))


def signature(doc: Document, entities: Iterable[str], publisher: str, seen_at: datetime) -> Signature:
    """The signature of ``doc``; ``entities`` are the gazetteer entity ids the rules found in it
    (``RuleSet.entities_in(view)``), ``publisher`` is ``publisher_of(doc.url, feed's key)``."""
    title = _title_tokens(readable_text(doc.title))
    key = _key_of(title)
    if " ".join(title) in _GENERIC_TITLES:
        title = []  # "Live updates" says nothing of the event
    body = token_form(_body(doc)).split()
    # Outlets retitle wire copy: near-duplicates are told by the body, unless it is a teaser.
    shingled = body[:SHINGLE_TOKENS] if len(body) >= SHINGLE_TOKENS // 4 else title + body
    return Signature(guid=_usable_guid(doc.id), url_key=canonical_url(doc.url) if doc.url else "",
                     title_key=key, minhash=minhash_of(shingled),
                     features=features_of(title, body[:LEAD_TOKENS]), entities=frozenset(entities),
                     publisher=publisher, seen_at=seen_at)


def split_features(features: tuple[tuple[int, float], ...]) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Features as their indices and their weights (what ``dot`` takes)."""
    if not features:
        return (), ()
    indices, weights = zip(*features, strict=True)
    return indices, weights


def dot(indices: tuple[int, ...], weights: tuple[float, ...], right: dict[int, float]) -> float:
    """The dot product of a vector given as indices and weights with one given as a dict, summed in
    index order (the same on every machine); all of it in C."""
    return float(sum(map(mul, weights, map(right.get, indices, repeat(0.0)))))


_VERSION = 1
_HEAD = struct.Struct("<BIHI")  # version, header length, minhash length, feature count


def encode(sig: Signature) -> bytes:
    """``sig`` as compact bytes for a store column (versioned; ``decode`` reads it back)."""
    header = json.dumps([sig.guid, sig.url_key, sig.title_key, sorted(sig.entities), sig.publisher,
                         iso(sig.seen_at)], ensure_ascii=False, separators=(",", ":")).encode()
    indices = array("I", [index for index, _ in sig.features])
    weights = array("f", [weight for _, weight in sig.features])
    return b"".join((_HEAD.pack(_VERSION, len(header), len(sig.minhash), len(indices)), header,
                     sig.minhash, indices.tobytes(), weights.tobytes()))


def decode(data: bytes) -> Signature:
    """The signature ``encode`` wrote; ValueError if ``data`` is not one."""
    try:
        version, header_length, minhash_length, count = _HEAD.unpack_from(data)
        if version != _VERSION:
            raise ValueError(f"signature version {version} (this version reads {_VERSION})")
        offset = _HEAD.size
        guid, url_key, key, entities, publisher, seen = json.loads(data[offset:offset + header_length])
        offset += header_length
        minhash = bytes(data[offset:offset + minhash_length])
        offset += minhash_length
        indices, weights = array("I"), array("f")
        indices.frombytes(data[offset:offset + 4 * count])
        weights.frombytes(data[offset + 4 * count:offset + 8 * count])
    except (struct.error, ValueError, TypeError) as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"not a story signature: {error}") from None
    if len(weights) != count or len(minhash) != minhash_length:
        raise ValueError("not a story signature: truncated")
    return Signature(guid, url_key, key, minhash, tuple(zip(indices.tolist(), weights.tolist(), strict=True)),
                     frozenset(entities), publisher, datetime.fromisoformat(seen.replace("Z", "+00:00")))
