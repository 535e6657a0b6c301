"""What a message is: the Decision the dialogue acts on, made from the fused probabilities."""

from __future__ import annotations

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
    if not flags:
        return know
    if know.kind == "answer":
        return Decision("red_flag", know.guide, know.entry_id, None, flags, score, know.candidates)
    return Decision("red_flag", None, None, None, flags, score, know.candidates)
