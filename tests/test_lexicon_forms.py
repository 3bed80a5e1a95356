"""bench/lexicon_forms.py: a clause's coverage of a lemma's forms, read from a Hunspell dictionary.

The pure parts (which term covers a form, reading .dic lines and the .aff encoding) always run; the
expansion runs the real `unmunch` on a small dictionary written here, when hunspell-tools is
installed (.ci/run installs it).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lexicon_forms", ROOT / "bench" / "lexicon_forms.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lexicon_forms"] = module
    spec.loader.exec_module(module)
    return module


lf = load_script()


def test_a_form_is_covered_by_a_whole_word_or_a_stem_after_folding() -> None:
    terms = lf.Terms(frozenset({"zestrzelil"}), ("stracon",))
    assert terms.covers("Zestrzelił") == "zestrzelil"  # case and diacritics folded as text is
    assert terms.covers("strąconego") == "stracon*"
    assert terms.covers("zestrzeliła") is None  # a whole word is not a stem
    assert terms.covers("strącić") is None
    assert terms.covers("strącony bardzo") is None  # two words: never one term
    assert lf.Terms(frozenset(), ("incalc",)).covers("încălcat-o") == "incalc*"  # a clitic after a hyphen


def test_unmunch_leftovers_and_elisions_are_stripped() -> None:
    assert lf._bare("abattu/L'D'Q'|") == "abattu"
    assert lf._bare("qu'abattu") == "abattu" and lf._bare("l\u2019abattu") == "abattu"


def test_dic_lines_give_their_word_before_flags_and_morphology() -> None:
    assert lf._dic_word("sestřelit/ATN\n") == "sestřelit"
    assert lf._dic_word("mušti/bX po:verb\n") == "mušti"
    assert lf._dic_word("1\\/2/N\n") == "1/2"  # an escaped slash is part of the word
    assert lf._dic_word("Tallinn\n") == "Tallinn"


def test_the_encoding_is_read_from_the_set_line(tmp_path: Path) -> None:
    for line, expected in (("SET ISO8859-2", "ISO8859-2"), ("SET\tUTF-8", "UTF-8"),
                           ("SET microsoft-cp1251", "cp1251")):
        aff = tmp_path / "x.aff"
        aff.write_text(f"# a comment\n{line}\nTRY abc\n", encoding="latin-1")
        assert lf._encoding(aff) == expected


def test_a_clause_s_terms_are_its_single_words_and_stems_not_its_phrases() -> None:
    terms, written = lf.clause_terms(ROOT / "rules", "shoot-down-pl")
    assert terms.covers("zestrzelony") is not None
    assert all(" " not in word for word in terms.words)
    assert written and all(word.isalpha() for word in written)


def test_an_unknown_clause_or_dictionary_is_one_line_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert lf.main(["--dict", "no_SUCH", "x"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "hint: apt-get install hunspell-LANG" in error
    if shutil.which("hunspell") and shutil.which("unmunch") and (Path("/usr/share/hunspell") / "pl_PL.dic").exists():
        assert lf.main(["--dict", "pl_PL", "--clause", "no-such-clause", "x"]) == 2
        assert "no clause $no-such-clause" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("unmunch") is None, reason="needs unmunch (apt-get install hunspell-tools)")
def test_unmunch_expands_an_entry_and_the_report_names_the_forms_not_covered(tmp_path: Path) -> None:
    aff = tmp_path / "xx.aff"
    aff.write_text("SET UTF-8\n\nSFX A Y 3\nSFX A ić ił ić\nSFX A ić iła ić\nSFX A ić ony ić\n", encoding="utf-8")
    dic = tmp_path / "xx.dic"
    dic.write_text("2\nstrącić/A\ninny/A\n", encoding="utf-8")
    dictionary = lf.Dictionary("xx", dic, aff, "UTF-8")
    assert dictionary.entries("Strącić") == ["strącić/A"]
    assert set(dictionary.forms("strącić")) == {"strącić", "strącił", "strąciła", "strącony"}
    assert dictionary.forms("absent") == []
    terms = lf.Terms(frozenset({"stracil"}), ("stracon",))
    missed = [form for form in dictionary.forms("strącić") if terms.covers(form) is None]
    assert set(missed) == {"strąciła", "strącić"}
