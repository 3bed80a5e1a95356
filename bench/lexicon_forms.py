"""Check a lexicon clause's forms against a language's spelling dictionary (issue 22).

The lexicons in rules/lib/ list each word's inflected forms, or stems with `*`. This script takes
the forms from a native-language source instead of from memory: the Hunspell dictionaries the
LibreOffice language projects publish (Debian's hunspell-LANG packages, /usr/share/hunspell).

For each lemma it expands the dictionary's entry into every form (`unmunch`, from hunspell-tools)
and prints which forms the clause covers and which it misses. With --terms it also asks Hunspell
about each whole word the clause writes (no `*`): a word the dictionary does not know is either a
guess to fix or a form the dictionary lacks (names, new words), to look up elsewhere.

    python bench/lexicon_forms.py --dict pl_PL --clause shoot-down-verb zestrzelić strącić
    python bench/lexicon_forms.py --dict cs_CZ --clause violate-cs-sk --terms narušit
    python bench/lexicon_forms.py --dict pl_PL zestrzelić          # the forms alone

Needs the `hunspell` and `unmunch` commands and the dictionary (apt-get install hunspell
hunspell-tools hunspell-pl ...). A tool for lexicon maintainers, not a dependency of the daemon.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.rules import query as q  # noqa: E402
from monitor.rules.clauses import Definition, load_library  # noqa: E402
from monitor.rules.loader import load_gazetteer  # noqa: E402
from monitor.text import query_tokens  # noqa: E402

DICTIONARIES = (Path("/usr/share/hunspell"), Path("/usr/share/myspell"), Path("/usr/share/myspell/dicts"))


class Problem(Exception):
    """A mistake of the caller's: one line, with a hint."""


@dataclass(frozen=True)
class Dictionary:
    name: str
    dic: Path
    aff: Path
    encoding: str

    @classmethod
    def find(cls, name: str) -> Dictionary:
        for folder in DICTIONARIES:
            dic, aff = folder / f"{name}.dic", folder / f"{name}.aff"
            if dic.is_file() and aff.is_file():
                return cls(name, dic, aff, _encoding(aff))
        known = sorted({p.stem for folder in DICTIONARIES if folder.is_dir() for p in folder.glob("*.dic")})
        raise Problem(f"no Hunspell dictionary {name!r} in {', '.join(map(str, DICTIONARIES))}; "
                      f"hint: apt-get install hunspell-LANG; installed: {' '.join(known) or 'none'}")

    def entries(self, lemma: str) -> list[str]:
        """The .dic lines whose word is ``lemma`` (any case)."""
        wanted = lemma.casefold()
        found = []
        with self.dic.open(encoding=self.encoding, errors="replace") as lines:
            next(lines, None)  # the word count
            for line in lines:
                word = _dic_word(line)
                if word.casefold() == wanted:
                    found.append(line.rstrip("\n"))
        return found

    def forms(self, lemma: str) -> list[str]:
        """Every form of ``lemma`` that its dictionary entries generate, in the dictionary's order."""
        entries = self.entries(lemma)
        if not entries:
            return []
        with tempfile.TemporaryDirectory() as folder:
            dic = Path(folder) / "one.dic"
            dic.write_text(f"{len(entries)}\n" + "\n".join(entries) + "\n", encoding=self.encoding)
            run = subprocess.run(["unmunch", str(dic), str(self.aff)], capture_output=True, check=False)
        seen: dict[str, None] = {lemma: None}
        for line in run.stdout.decode(self.encoding, errors="replace").split():
            form = _bare(line)
            if form and not (any(c.isdigit() for c in form) and not any(c.isdigit() for c in lemma)):
                seen.setdefault(form, None)
        return list(seen)

    def starting(self, start: str) -> list[str]:
        """Every form of every entry whose word starts with ``start``: for dictionaries that list
        each form as an entry of its own (ro_RO, el_GR), where a lemma's entry has few forms."""
        with self.dic.open(encoding=self.encoding, errors="replace") as lines:
            next(lines, None)
            words = {_dic_word(line) for line in lines}
        found: dict[str, None] = {}
        for word in sorted(w for w in words if w.startswith(start)):
            for form in self.forms(word):
                if form.startswith(start):
                    found.setdefault(form, None)
        return list(found)

    def unknown(self, words: list[str]) -> list[str]:
        """Those of ``words`` Hunspell rejects (in its pipe mode, '&' or '#' lines)."""
        if not words:
            return []
        run = subprocess.run(["hunspell", "-a", "-i", "utf-8", "-d", str(self.dic.with_suffix(""))],
                             input="".join(f"^{w}\n" for w in words).encode(), capture_output=True, check=False)
        answers = [line for line in run.stdout.decode(errors="replace").splitlines()[1:] if line]
        return [word for word, answer in zip(words, answers, strict=False) if answer[:1] in "&#"]


def _dic_word(line: str) -> str:
    """The word of a .dic line: up to an unescaped '/', a tab or a space (morphology follows)."""
    end = len(line)
    for mark in ("/", "\t", " "):
        at = line.find(mark)
        while at > 0 and mark == "/" and line[at - 1] == "\\":
            at = line.find(mark, at + 1)
        if at != -1:
            end = min(end, at)
    return line[:end].strip().replace("\\/", "/")


def _bare(form: str) -> str:
    """A form as unmunch prints it, without what it leaves of a twofold affix's flags ("abattu/L'D'Q'")
    and without an elided article or pronoun written before it ("l'abattu", "qu'abattu")."""
    form = form.split("/", 1)[0]
    return form.rsplit("'", 1)[-1].rsplit("\u2019", 1)[-1]


def _encoding(aff: Path) -> str:
    with aff.open(encoding="latin-1") as lines:
        for line in lines:
            if line.split()[:1] == ["SET"]:
                name = line.split()[1].strip()
                return {"microsoft-cp1251": "cp1251", "ISO8859-1": "latin-1"}.get(name, name)
    return "latin-1"


@dataclass(frozen=True)
class Terms:
    """The single-token terms of a clause: whole words and `*` stems (phrases are left out)."""

    words: frozenset[str]
    stems: tuple[str, ...]

    def covers(self, form: str) -> str | None:
        """The term that matches the one-token ``form`` (folded as text is), or None. A form with a
        clitic after a hyphen ("încălcat-o", "abattons-nous") is read by its first token, as the
        text's tokens are."""
        tokens = query_tokens(form)
        if len(tokens) != 1 and not (tokens and "-" in form):
            return None
        token = tokens[0]
        if token in self.words:
            return token
        return next((stem + "*" for stem in self.stems if token.startswith(stem)), None)


def clause_terms(rules: Path, name: str) -> tuple[Terms, list[str]]:
    """The terms of the rules/lib clause ``$name`` (and of the clauses it uses); and its whole
    words as written in the file (unfolded, for the dictionary's spelling check)."""
    gazetteer, _ = load_gazetteer(rules)
    library, _ = load_library(rules / "lib", gazetteer)
    if name.lstrip("$") not in library.definitions:
        raise Problem(f"no clause ${name.lstrip('$')} in {rules / 'lib'}; "
                      "hint: give a name defined under define: in a rules/lib file")
    clause = library.clause(name.lstrip("$"))
    if clause is None:
        raise Problem(f"clause ${name.lstrip('$')} has errors; hint: run crisis-monitor rules check")
    inside_phrases = {id(w) for node in q.walk(clause.body) if isinstance(node, q.Phrase) for w in node.words}
    words = [node for node in q.walk(clause.body) if isinstance(node, q.Word) and id(node) not in inside_phrases]
    written = _written_words(library.definitions, clause)
    return Terms(frozenset(w.token for w in words if not w.prefix),
                 tuple(sorted({w.token for w in words if w.prefix}))), written


def _written_words(definitions: dict[str, Definition], clause: q.Clause) -> list[str]:
    """The whole words (no `*`, no quotes) of the clause and the clauses it uses, as written."""
    names = [node.name for node in q.walk(clause) if isinstance(node, q.Clause)]
    out: dict[str, None] = {}
    for name in dict.fromkeys(names):
        for token in q.lex(definitions[name].node.value):
            if isinstance(token.node, q.Word) and not token.node.prefix and token.text.isalpha():
                out.setdefault(token.text, None)
    return list(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("lemmas", nargs="*", metavar="LEMMA",
                        help="dictionary forms to expand (infinitive, nominative)")
    parser.add_argument("--dict", required=True, metavar="NAME", help="Hunspell dictionary, e.g. pl_PL, cs_CZ, lt_LT")
    parser.add_argument("--clause", metavar="NAME", help="a rules/lib clause to check the forms against")
    parser.add_argument("--rules", type=Path, default=ROOT / "rules", help="rules folder (default: this tree's)")
    parser.add_argument("--only", metavar="START", help="keep only the forms that start with START "
                        "(a prefixed verb the dictionary derives from its base: --only numuš mušti)")
    parser.add_argument("--skip", metavar="START", action="append", default=[],
                        help="leave out the forms that start with START (negated forms: --skip ne); repeatable")
    parser.add_argument("--starting", metavar="STEM", action="append", default=[],
                        help="check every dictionary word starting with STEM, with its forms (for dictionaries "
                        "that list each form as its own word, as ro_RO and el_GR do); repeatable")
    parser.add_argument("--terms", action="store_true",
                        help="also list the clause's whole words the dictionary does not know")
    args = parser.parse_args(argv)
    try:
        for tool in ("hunspell", "unmunch"):
            if shutil.which(tool) is None:
                raise Problem(f"the {tool} command is missing; hint: apt-get install hunspell hunspell-tools")
        dictionary = Dictionary.find(args.dict)
        terms, written = clause_terms(args.rules, args.clause) if args.clause else (None, [])
        if not args.lemmas and not args.terms and not args.starting:
            raise Problem("nothing to check; hint: give lemmas, --starting STEM, or --clause NAME --terms")
        status = 0
        asked = [(lemma, dictionary.forms(lemma)) for lemma in args.lemmas]
        asked += [(f"{stem}…", dictionary.starting(stem)) for stem in args.starting]
        for lemma, all_forms in asked:
            forms = [form for form in all_forms
                     if form.startswith(args.only or "") and not any(form.startswith(s) for s in args.skip)]
            if not forms:
                print(f"{dictionary.name} {lemma}: no forms (not in the dictionary, or --only/--skip left none)")
                status = 1
                continue
            kept = f" starting {args.only}" if args.only else ""
            kept += "".join(f", not {start}-" for start in args.skip)
            print(f"{dictionary.name} {lemma}: {len(forms)} forms{kept}")
            if terms is None:
                print("  " + " ".join(forms))
                continue
            covered = [(form, terms.covers(form)) for form in forms]
            missed = [form for form, term in covered if term is None]
            print(f"  covered by ${args.clause.lstrip('$')}: {len(forms) - len(missed)} of {len(forms)}")
            if missed:
                print("  not covered: " + " ".join(missed))
        if args.terms and args.clause:
            unknown = dictionary.unknown(written)
            print(f"${args.clause.lstrip('$')}: {len(written)} whole words; unknown to {dictionary.name} "
                  f"(other languages' words show here too): {' '.join(unknown) or 'none'}")
        return status
    except Problem as problem:
        print(f"lexicon_forms: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
