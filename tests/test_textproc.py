"""Danish text processing: normalisation, lemmas, compounds, synonyms, typos, compact table."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from bot import lemmas
from bot.ask import shared
from bot.fold import clean
from bot.fold import fold as skeleton
from bot.knowledge import Knowledge, load_knowledge, validate
from bot.lemmas import build_compact_table, load_compact_table, split_compound
from bot.settings import PROJECT_ROOT
from bot.textproc import TextProcessor, _analyses_path, _tokenize, build_processor

KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"
INTENTS_DIR = PROJECT_ROOT / "intents"


@pytest.fixture(scope="module")
def proc() -> TextProcessor:
    return shared()[1].proc


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return shared()[0]


def terms(proc: TextProcessor, text: str) -> list[str]:
    return proc.analyse(text).terms


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("knæ", "knae"),
        ("knæ", "kna"),
        ("hård", "haard"),
        ("hård", "hard"),
        ("ømhed", "oemhed"),
        ("ømhed", "omhed"),
        ("gør", "goer"),
        ("når", "naar"),
        ("KNÆ", "knæ"),
    ],
)
def test_skeleton_folds_danish_letters(a: str, b: str) -> None:
    assert skeleton(a) == skeleton(b)


def test_skeleton_keeps_different_words_apart() -> None:
    assert skeleton("hase") != skeleton("hæl")
    assert skeleton("sene") != skeleton("sove")


def test_clean_lowercases_and_drops_control_characters_and_emoji() -> None:
    assert clean("Ondt\x00 UNDER\tballen 😀🏃‍♂️!") == "ondt under ballen !"
    assert clean("\u200b\u202e") == ""


@pytest.mark.parametrize(
    ("typed", "proper"),
    [
        ("HJÆLPER MASSAGE", "hjælper massage"),
        ("hjaelper massage paa knaeet", "hjælper massage på knæet"),
        ("hjalper massage pa knaet", "hjælper massage på knæet"),
        ("oemhed ved siddeknoglen", "ømhed ved siddeknoglen"),
        ("Ondt Under Ballen", "ondt under ballen"),
    ],
)
def test_case_and_diacritics_do_not_change_terms(
    proc: TextProcessor, typed: str, proper: str
) -> None:
    assert terms(proc, typed) == terms(proc, proper)


# ------------------------------------------------------------------- lemmas


@pytest.mark.parametrize(
    ("form", "lemma"),
    [
        ("hasen", "hase"),
        ("haser", "hase"),
        ("ballen", "balle"),
        ("baller", "balle"),
        ("gør", "gøre"),
        ("senerne", "sene"),
        ("smerter", "smerte"),
    ],
)
def test_domain_lemma_fixes(proc: TextProcessor, form: str, lemma: str) -> None:
    assert proc.analyse(form).tokens[0].term == skeleton(lemma)


def test_lemma_fixes_are_loaded_with_the_knowledge() -> None:
    kb = load_knowledge(KNOWLEDGE_DIR, INTENTS_DIR)
    assert kb.lemmas["hasen"] == "hase" and kb.lemmas["ballen"] == "balle"


def test_lemmas_file_problems_are_reported(tmp_path: Path) -> None:
    kdir, idir = tmp_path / "knowledge", tmp_path / "intents"
    shutil.copytree(KNOWLEDGE_DIR, kdir)
    shutil.copytree(INTENTS_DIR, idir)
    bad = kdir / "lang" / "lemmas.yaml"
    bad.write_text("lemmas:\n  Hasen: hase\n  ballen: ''\n", encoding="utf-8")
    problems = [str(p) for p in validate(kdir, idir)]
    assert len(problems) == 2
    assert all(p.startswith("knowledge/lang/lemmas.yaml:") for p in problems), problems
    assert any(p.startswith("knowledge/lang/lemmas.yaml:2:") and "Hasen" in p for p in problems)
    bad.write_text("lemma: {}\n", encoding="utf-8")
    assert validate(kdir, idir)
    bad.write_text("lemmas: [\n", encoding="utf-8")
    assert validate(kdir, idir)


# ---------------------------------------------------------------- compounds


@pytest.mark.parametrize(
    ("joined", "split"),
    [("hasesene", "hase sene"), ("siddeknoglen", "sidde knoglen"), ("knæhasen", "knæ hasen")],
)
def test_split_compounds_join(proc: TextProcessor, joined: str, split: str) -> None:
    assert proc.analyse(split).tokens[0].term == proc.analyse(joined).tokens[0].term


@pytest.mark.parametrize(
    ("compound", "part"),
    [
        ("hasemusklerne", "hase"),
        ("baglårssmerter", "smerte"),
        ("senefæstet", "sene"),
        ("hasesenen", "sene"),
        ("siddeknoglen", "knogle"),
    ],
)
def test_compounds_split_into_known_parts(proc: TextProcessor, compound: str, part: str) -> None:
    assert skeleton(part) in terms(proc, compound)


def test_split_compound_needs_known_parts() -> None:
    known = {"hase", "sene", "senen", "knæ"}.__contains__
    assert split_compound("hasesenen", known, known) == ("hase", "senen")
    assert split_compound("xyzsenen", known, known) is None
    # Danish linking -s-: "baglårs" + "smerter"
    known2 = {"baglår", "smerter"}.__contains__
    assert split_compound("baglårssmerter", known2, known2) == ("baglår", "smerter")


# ----------------------------------------------------------------- synonyms


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("numse", "balle"),
        ("røv", "balle"),
        ("sit bone", "siddeknogle"),
        ("bag knæet", "knæhase"),
        ("hamstring tendinopathy", "hasetendinopati"),
        ("stretching", "strække"),
        ("knee", "knæ"),
        ("running", "løbe"),
        ("numbness", "følelsesløshed"),
        ("sleep", "søvn"),
    ],
)
def test_synonyms_map_to_canonical(proc: TextProcessor, variant: str, canonical: str) -> None:
    assert proc.terms_of(variant) == proc.terms_of(canonical)


def test_every_synonym_variant_reaches_its_canonical(proc: TextProcessor, kb: Knowledge) -> None:
    wrong = [
        (canon, v)
        for canon, variants in kb.synonyms.items()
        for v in variants
        if proc.terms_of(v) != proc.terms_of(canon)
    ]
    assert wrong == []


# -------------------------------------------------------------------- typos


@pytest.mark.parametrize(
    ("typo", "word"),
    [
        ("hasetendinopsti", "hasetendinopati"),
        ("dsital", "distal"),
        ("underbnet", "underbenet"),
        ("søvm", "søvn"),
        ("balen", "ballen"),
        ("hoftesmertr", "hoftesmerter"),
    ],
)
def test_typos_are_corrected(proc: TextProcessor, typo: str, word: str) -> None:
    assert proc.analyse(typo).tokens[0].term == proc.analyse(word).tokens[0].term


def test_short_words_are_not_fuzzed(proc: TextProcessor) -> None:
    assert proc.analyse("ondt").tokens[0].term == "ondt"
    assert proc.analyse("sondt").tokens[0].term != "ondt"
    assert not proc.analyse("xq").tokens[0].known


# ------------------------------------------------------------ compact table


def test_compact_table_keeps_only_reachable_forms() -> None:
    full = {"hasen": "has", "løber": "løbe", "løbet": "løb", "bilerne": "bil", "løbe": "løbe"}
    table = build_compact_table(Counter({"hasen": 2, "løbe": 3}), full, {"hasen": "hase"})
    assert table.lemmas["hasen"] == "hase"  # the override wins
    assert table.lemmas["løber"] == "løbe"  # reaches a vocabulary lemma
    assert "bilerne" not in table.lemmas  # cannot reach the knowledge


def test_compact_table_is_cached_and_reused(
    kb: Knowledge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lemmas, "load_full_lemma_table", lambda: {"hasen": "has", "løber": "løbe"})
    first = load_compact_table(kb, tmp_path)
    assert list(tmp_path.glob("lemmas-*.json"))

    def boom() -> dict[str, str]:
        raise AssertionError("the full table must not be loaded when the cache is warm")

    monkeypatch.setattr(lemmas, "load_full_lemma_table", boom)
    second = load_compact_table(kb, tmp_path)
    assert second.lemmas == first.lemmas


def test_swapped_letters_across_ae_are_corrected(proc: TextProcessor) -> None:
    # Folding "ae" to "a" first would hide a plain swap of two letters.
    assert terms(proc, "massgae") == terms(proc, "massage")


@pytest.mark.parametrize(
    ("word", "not_word"),
    [
        ("nakken", "bakken"),
        ("heat", "helt"),
        # Real words the knowledge never uses, Danish and English, are not typos of its words.
        ("hvalp", "hjælp"),
        ("forbi", "fordi"),
        ("femte", "femten"),
        ("socks", "shocks"),
        ("after", "aften"),
        # English mixed in reaches the guides' words, not look-alikes.
        ("walking", "vågne"),
        ("shoes", "kortison"),
        ("spine", "spise"),
    ],
)
def test_real_words_are_not_corrected_into_other_words(
    proc: TextProcessor, word: str, not_word: str
) -> None:
    assert terms(proc, word) != terms(proc, not_word)


def test_a_real_word_the_knowledge_does_not_use_stays_unknown(proc: TextProcessor) -> None:
    assert not proc.analyse("hvalp").tokens[0].known
    assert proc.analyse("hoftn").tokens[0].term == proc.analyse("hofte").tokens[0].term


@pytest.mark.parametrize(
    ("english", "danish"), [("walking", "gå"), ("treadmill", "løbebånd"), ("surgery", "operation")]
)
def test_english_words_map_to_the_guides_words(
    proc: TextProcessor, english: str, danish: str
) -> None:
    assert terms(proc, english) == terms(proc, danish)


@pytest.mark.parametrize("word", ["øm", "ømt", "øget", "ændret"])
def test_words_with_danish_letters_are_not_small_words_by_their_folded_form(
    proc: TextProcessor, word: str
) -> None:
    assert terms(proc, word) != []


def test_two_tiny_non_words_do_not_make_a_compound(proc: TextProcessor) -> None:
    assert proc.analyse("distal").tokens[0].parts == ()
    assert proc.analyse("distale").tokens[0].term == proc.analyse("distal").tokens[0].term


def test_a_compound_head_takes_its_synonym(proc: TextProcessor) -> None:
    # "øvelse" is a synonym of "træning"; the unseen compound's head follows it.
    assert set(terms(proc, "træning")) <= set(terms(proc, "knæhaseøvelse"))


@pytest.mark.parametrize(("word", "other"), [("læst", "låst"), ("læser", "låser")])
def test_typed_danish_letters_are_not_folded_into_another_word(
    proc: TextProcessor, word: str, other: str
) -> None:
    assert terms(proc, word) != terms(proc, other)


def test_no_compound_split_off_an_inflected_form(proc: TextProcessor) -> None:
    # "bedring" is a word of its own, not "bed" (of "bide") + "ring".
    assert proc.analyse("bedring").tokens[0].parts == ()
    assert proc.analyse("baglårssmerter").tokens[0].parts != ()


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("fase3", ["fase", "3"]),
        ("løb 21km", ["løb", "21", "km"]),
        ("uge6", ["uge", "6"]),
        ("vo2max", ["vo2max"]),  # a letter-digit-letter word stays whole
    ],
)
def test_a_word_and_a_number_typed_together_are_two_tokens(typed: str, words: list[str]) -> None:
    assert _tokenize(typed) == words



def _copied_analyses(kb: Knowledge, warm_cache: Path, folder: Path) -> Path:
    """A copy of the warm caches in `folder`, and the path of its analyses file."""
    shutil.copytree(warm_cache, folder, dirs_exist_ok=True)
    path = _analyses_path(kb, folder)
    assert path is not None and path.exists()
    return path


def test_cached_analyses_are_the_fresh_ones_and_a_damaged_one_is_redone(
    kb: Knowledge, warm_cache: Path, tmp_path: Path
) -> None:
    path = _copied_analyses(kb, warm_cache, tmp_path)
    stored = json.loads(path.read_text(encoding="utf-8"))
    phrasings = sorted(stored)[:: max(1, len(stored) // 200)]
    stored[phrasings[0]] = "[[1, 2]]"  # damaged
    path.write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")
    cached = build_processor(kb, tmp_path)
    fresh = shared()[1].proc
    assert cached.preloaded  # read from the cache, not rebuilt
    for text in phrasings:
        assert cached._base(text) == fresh._base_uncached(text), text


def test_an_unreadable_analyses_cache_is_rebuilt(
    kb: Knowledge, warm_cache: Path, tmp_path: Path
) -> None:
    path = _copied_analyses(kb, warm_cache, tmp_path)
    path.write_text('{"ondt": [1]}', encoding="utf-8")
    proc = build_processor(kb, tmp_path)
    assert not proc.preloaded and proc.cache_path == path  # written again after this start
    assert proc.analyse("ondt").terms == shared()[1].proc.analyse("ondt").terms
