"""Long stories and dictated run-ons: the question inside is found and answered.

A run-on has no punctuation to find its question by; it is cut into clauses by the words of
knowledge/lang/sentences.yaml, and the clauses that ask are read again beside the whole message
(bot/matching/vectors.py)."""

from __future__ import annotations

from bot.ask import shared
from bot.matching.candidates import FEATURES, Option, allowed_guides, options
from bot.matching.vectors import clauses_of, message_vector, question_sentences

KB, MATCHER = shared()
CLAUSES = clauses_of(KB.vocab)

RUNON = (
    "jeg har løbet i tyve år og tager altid en lang tur om søndagen og nu har jeg ondt "
    "ved siddeknoglen men altså skal jeg strække baglåret ud bagefter"
)


def test_a_runon_is_cut_before_its_question() -> None:
    parts = CLAUSES.split(RUNON)
    assert parts[-1] == "men altså skal jeg strække baglåret ud bagefter"
    assert " ".join(parts) == RUNON
    assert [CLAUSES.asks(p) for p in parts] == [False] * (len(parts) - 1) + [True]


def test_a_question_word_inside_a_runon_starts_the_question() -> None:
    text = (
        "jeg arbejder som lærer og står op hele dagen og om aftenen løber jeg med min hund "
        "og så har jeg fået ondt bag knæet hvilke øvelser skal jeg lave"
    )
    assert question_sentences(MATCHER.proc, text) == ["hvilke øvelser skal jeg lave"]


def test_statement_word_order_after_an_adverb_is_no_question() -> None:
    # "i dag er det helt væk" inverts like a question but follows a fronted adverbial.
    text = "i går løb jeg 7 km og det gjorde lidt ondt til sidst og i dag er det helt væk"
    assert question_sentences(MATCHER.proc, text) == []


def test_a_punctuated_message_is_not_cut_as_a_runon() -> None:
    text = "Jeg har ondt, men hvad gør jeg"
    assert CLAUSES.split(text) == [text]


def test_the_question_at_the_end_of_a_runon_is_answered() -> None:
    story = RUNON.split(" men altså ")[0]
    assert MATCHER.decide(story, "proximal").entry_id not in {"p_faq_stretch", "p_stretching"}
    decision = MATCHER.decide(RUNON, "proximal")
    assert decision.kind == "answer"
    assert decision.entry_id in {"p_faq_stretch", "p_stretching"}


def test_a_runon_story_does_not_drown_its_question() -> None:
    # Read whole, the work, the dog and the knee leave the ranker unsure (a clarify); the
    # question clause names what is asked.
    text = (
        "jeg arbejder som lærer og står op hele dagen og om aftenen løber jeg med min hund "
        "og så har jeg fået ondt bag knæet hvilke øvelser skal jeg lave"
    )
    decision = MATCHER.decide(text)
    assert decision.kind == "answer"
    assert decision.entry_id in {"d_faq_bedste_oevelse", "d_fase2", "d_fase1"}


# ------------------------------------------------------------ the question's own features

STORY_WITH_QUESTION = (
    "Min datter har fodbold tre gange om ugen, så jeg får kun løbet om aftenen. "
    "Jeg har lige købt et nyt ur og en ny pandelampe. Hjælper massage på senen under ballen? "
    "Min nabo er massør og har tilbudt at hjælpe."
)


def _options(text: str, guide: str | None) -> list[Option]:
    a = MATCHER.proc.analyse(text)
    m = MATCHER.evidence.message(a)
    ranker = MATCHER.rankers.scope(allowed_guides(KB, m, guide))
    vec = message_vector(MATCHER.rankers.vectorizer, MATCHER.proc, text, a)
    return options(MATCHER.classes[id(ranker)], MATCHER.evidence, ranker.scores(vec), m, guide)


def test_the_question_clauses_terms_are_kept_apart_from_the_story() -> None:
    m = MATCHER.evidence.message(MATCHER.proc.analyse(STORY_WITH_QUESTION))
    massage = MATCHER.proc.terms_of("massage")[0]
    daughter = MATCHER.proc.terms_of("datter")[0]
    assert massage in m.question
    assert daughter in m.terms and daughter not in m.question
    # A message that is all question has no separate question part.
    assert MATCHER.evidence.message(MATCHER.proc.analyse("hjælper massage?")).question == set()


def test_the_question_alone_is_scored_beside_the_whole_story() -> None:
    opts = _options(STORY_WITH_QUESTION, "proximal")
    col = FEATURES.index("question_score")
    by_question = max(opts, key=lambda o: o.features[col])
    assert by_question.entry_id in {"p_faq_massage", "p_massage"}
    cover = FEATURES.index("question_cover")
    assert by_question.features[cover] > by_question.features[FEATURES.index("cover")]


def test_a_message_that_is_all_question_has_the_same_question_features() -> None:
    opts = _options("hjælper massage på senen under ballen", "proximal")
    for o in opts:
        assert o.features[FEATURES.index("question_score")] == o.features[FEATURES.index("score")]
        q_cover = o.features[FEATURES.index("question_cover")]
        assert q_cover == o.features[FEATURES.index("cover")]
