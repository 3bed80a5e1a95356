"""How common a word is in text: the presearcher indexes each rule under its rarest terms.

Pure. Frequencies come from wordfreq's "small" lists for English, French and German (the rules'
languages), read once per process. They are read from wordfreq's data files directly, in the
"cBpack" format its ``read_cBpack`` documents (gzipped msgpack: a header, then one list of words per
centibel of frequency), because importing wordfreq itself costs about a second (ftfy, langcodes), which
every ``scan`` would pay. If the files cannot be read, a word's length stands in for its rarity: the
index is then less sharp, never wrong (it only decides which rules are looked at first).
"""

from __future__ import annotations

import gzip
import importlib.util
from bisect import bisect_left
from functools import cache, lru_cache
from itertools import accumulate
from pathlib import Path

from monitor.text import fold

LANGUAGES = ("en", "fr", "de")
UNKNOWN = 1e-6  # a word in none of the lists: rarer than all of them (their floor is about 1e-6)


@cache
def frequencies() -> dict[str, float]:
    """Folded word -> its highest frequency in LANGUAGES; {} if wordfreq's lists cannot be read."""
    try:
        import msgpack  # wordfreq's own dependency

        spec = importlib.util.find_spec("wordfreq")
        folder = Path(next(iter(spec.submodule_search_locations or ()))) / "data" if spec else None
        out: dict[str, float] = {}
        for language in LANGUAGES:
            if folder is None:
                return {}
            packed = msgpack.unpackb(gzip.decompress((folder / f"small_{language}.msgpack.gz").read_bytes()))
            if not isinstance(packed[0], dict) or packed[0].get("format") != "cB":
                return {}
            for centibels, words in enumerate(packed[1:]):
                frequency = 10 ** (-centibels / 100)
                for word in words:
                    key = word if word.isascii() else fold(word)
                    if out.get(key, 0.0) < frequency:
                        out[key] = frequency
        return out
    except (ImportError, OSError, ValueError, TypeError, IndexError, StopIteration):
        return {}


@cache
def _sorted() -> tuple[list[str], list[float]]:
    """The words in order, and the running sum of their frequencies (for prefixes)."""
    table = frequencies()
    words = sorted(table)
    return words, list(accumulate((table[w] for w in words), initial=0.0))


@lru_cache(maxsize=1 << 16)
def frequency(word: str, prefix: bool = False) -> float:
    """About how often ``word`` (a folded token; any word it begins if ``prefix``) occurs in text.

    Cached: compiling a rule set asks for the same terms again and again (each entity's aliases
    once per rule that names it), which was most of the time a small command spent starting."""
    table = frequencies()
    if not table:
        return 1 / len(word) ** 2 * (4 if prefix else 1)
    if prefix:  # the words it begins, all together
        words, running = _sorted()
        low, high = bisect_left(words, word), bisect_left(words, word + "\U0010ffff")
        return max(running[high] - running[low], UNKNOWN)
    found = table.get(word, UNKNOWN)
    return max(found, 1e-3) if word.isdigit() else found  # the lists fold numbers together
