"""What a message is: the Decision the dialogue acts on, made from the fused probabilities."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bot.knowledge import Knowledge
from bot.matching.candidates import Option
from bot.matching.fusion import Fusion

Kind = Literal["answer", "clarify", "fallback", "red_flag", "intent"]


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    guide: str
    score: float  # 0-100: the fused probability that this entry is the answer


@dataclass(frozen=True)
class Decision:
    kind: Kind
    guide: str | None
    entry_id: str | None
    intent_id: str | None
    red_flags: tuple[str, ...]
    score: float
    candidates: tuple[Candidate, ...]
    also: tuple[str, ...] = ()  # a related entry of the same guide, quoted after the answer


def decide(
    kb: Knowledge, fusion: Fusion, options: Sequence[Option], flags: tuple[str, ...] = ()
) -> Decision:
    p = fusion.probability(np.vstack([o.features for o in options])) if options else np.zeros(0)
    order = [int(i) for i in np.argsort(-p, kind="stable")]
    ranked = [(options[i], float(p[i])) for i in order]
    entries = tuple(
        Candidate(e, kb.entry_guide[e], round(100 * pr, 1)) for o, pr in ranked for e in o.entries
    )
    outcome = fusion.outcome(p)
    score = round(100 * ranked[0][1], 1) if ranked else 0.0
    know: Decision
    if outcome == "answer":
        best = ranked[0][0]
        if best.intent_id is not None:
            know = Decision("intent", None, None, best.intent_id, (), score, ())
        elif best.entry_id is None:
            # Parallel entries and no guide context: ask which guide was meant.
            both = tuple(Candidate(e, kb.entry_guide[e], score) for e in best.entries)
            know = Decision("clarify", None, None, None, (), score, both)
        else:
            eid = best.entry_id
            know = Decision("answer", kb.entry_guide[eid], eid, None, (), score, entries)
    elif outcome == "clarify" and len(entries) > 1:
        picks = tuple(
            Candidate(o.entries[0], kb.entry_guide[o.entries[0]], round(100 * pr, 1))
            for o, pr in ranked[:3]
            if o.entries
        )
        kind: Kind = "clarify" if len(picks) > 1 else "fallback"
        know = Decision(kind, None, None, None, (), score, picks)
    else:
        know = Decision("fallback", None, None, None, (), score, entries[:3])
    if know.kind != "answer" and (pair := _related_pair(kb, ranked, fusion.answer_at)):
        (first, second), together = pair
        guide = kb.entry_guide[first]
        know = Decision("answer", guide, first, None, (), together, entries, (second,))
    if not flags:
        return know
    if know.kind == "answer":
        return dataclasses.replace(know, kind="red_flag", red_flags=flags)
    return Decision("red_flag", None, None, None, flags, score, know.candidates)


def _related_pair(
    kb: Knowledge, ranked: Sequence[tuple[Option, float]], answer_at: float
) -> tuple[tuple[str, str], float] | None:
    """The best candidate and an entry the maintainers marked related to it (same guide),
    when a reply quoting both is as likely right as a single answer must be.

    A guide often says one thing twice, in its FAQ and in a section ("Skal man strække?" and
    "Udstrækning"); the two split the probability, so neither reached the answer threshold
    and the runner got a question back. The probabilities are of disjoint events (one entry
    is the answer), so the pair's is their sum."""
    if not ranked or (first := ranked[0][0].entry_id) is None:
        return None
    p_first = ranked[0][1]
    for option, p in ranked[1:3]:
        second = option.entry_id
        if second is None or kb.entry_guide[second] != kb.entry_guide[first]:
            continue
        linked = second in kb.entries[first].related or first in kb.entries[second].related
        if linked and p_first + p >= answer_at:
            return (first, second), round(100 * (p_first + p), 1)
    return None
