"""A message as the ranker's vector: the whole message, and in a multi-sentence message its
question sentences again, so a long story does not drown the question it ends with."""

from __future__ import annotations

from bot.matching.features import Vectorizer, combine, raw_features, sentences
from bot.matching.model import Sparse
from bot.textproc import Analysis, TextProcessor


def question_sentences(proc: TextProcessor, text: str) -> list[str]:
    """Sentences that ask ("?" or a question word first); a question too short to say what it
    is about ("Er det en god ide?") takes the sentence before it along."""
    parts = sentences(text)
    if len(parts) < 2:
        return []
    starts = proc.vocab.words("question_words")
    found: list[str] = []
    for n, sentence in enumerate(parts):
        first = sentence.split(maxsplit=1)[0].lower().strip(",.;:")
        if not sentence.endswith("?") and first not in starts:
            continue
        if proc.analyse(sentence).content_count < 2 and n > 0:
            found.append(parts[n - 1])
        found.append(sentence)
    return found if len(found) < len(parts) else []


def message_vector(
    vectorizer: Vectorizer,
    proc: TextProcessor,
    text: str,
    a: Analysis,
    whole: Sparse | None = None,
) -> Sparse:
    """`whole`: the message's own vector when already computed (training rows)."""
    if whole is None:
        whole = vectorizer.vector(raw_features(text, a))
    questions = question_sentences(proc, text)
    if not questions:
        return whole
    q = " ".join(questions)
    return combine([whole, vectorizer.vector(raw_features(q, proc.analyse(q)))])
