"""Red flags: the guides' warning signs, found by rules a maintainer can read and test
(knowledge/red_flags.yaml: groups of alternative terms, exclusions, a minimum duration).

Rules, not the learned ranker, because a missed red flag is the one mistake the bot must not
make and every phrasing that has to fire is written down as a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.knowledge import Knowledge, RedFlag
from bot.textproc import Analysis, TextProcessor, Token, find_phrase

NEAR = 3  # words either side of a phrase a negator reaches ("ingen hævelse", "vækker mig ikke")
VAGUE_COUNT = 2  # "i flere måneder": a unit with no number before it counts this many times


@dataclass(frozen=True)
class _Flag:
    flag: RedFlag
    groups: tuple[tuple[tuple[str, ...], ...], ...]
    none_of: tuple[tuple[str, ...], ...]
    # Per group, every term its phrases use: a message with none of one group's is no match.
    needs: tuple[frozenset[str], ...]


class RedFlags:
    def __init__(self, kb: Knowledge, proc: TextProcessor) -> None:
        self.proc = proc
        self.negators = proc.negators
        self.subclause_starts = kb.vocab.words("subclause_starts")
        self.unit_days = {
            term: days
            for word, days in kb.vocab.mapping("unit_days").items()
            for term in proc.terms_of(word)[:1]
        }
        self.flags = [self._compile(rf) for rf in kb.red_flags]

    def _phrase(self, text: str) -> tuple[str, ...]:
        return tuple(t.term for t in self.proc.analyse(text).tokens)

    def _compile(self, rf: RedFlag) -> _Flag:
        groups = tuple(tuple(s for t in g if (s := self._phrase(t))) for g in rf.all_of)
        none_of = tuple(s for t in rf.none_of if (s := self._phrase(t)))
        needs = tuple(frozenset(t for seq in g for t in seq) for g in groups)
        return _Flag(rf, groups, none_of, needs)

    def find(self, a: Analysis) -> tuple[str, ...]:
        return tuple(f.flag.id for f in self.flags if self._fires(f, a))

    def _fires(self, f: _Flag, a: Analysis) -> bool:
        toks, vocab = a.tokens, a.vocabulary
        if any(need.isdisjoint(vocab) for need in f.needs):
            return False
        # Quick reject: every group needs a phrase whose words all occur somewhere.
        for group in f.groups:
            if not any(all(t in vocab for t in seq) for seq in group):
                return False
        for seq in f.none_of:
            if seq[0] in vocab and find_phrase(toks, seq):
                return False
        for group in f.groups:
            if not any(all(t in vocab for t in seq) and self._affirmed(toks, seq) for seq in group):
                return False
        if f.flag.min_weeks is not None:
            days = self._durations(toks)
            if not days or max(days) < 7 * f.flag.min_weeks:
                return False
        return True

    def _affirmed(self, toks: Sequence[Token], seq: tuple[str, ...]) -> bool:
        """The phrase occurs and is not negated nearby in its clause ("det vækker mig ikke")."""
        if any(t in self.negators for t in seq):
            return bool(find_phrase(toks, seq))
        return any(not self._negated(toks, i, len(seq)) for i in find_phrase(toks, seq))

    def _negated(self, toks: Sequence[Token], i: int, n: int) -> bool:
        """A negator up to NEAR words before ("ingen hævelse"), or after across only small
        words ("det vækker mig ikke", but not "knæet aftager ikke"), in the same clause ("om
        natten at jeg ikke kan sove": that "ikke" belongs to the next clause)."""
        clause = toks[i].clause
        for t in toks[max(0, i - NEAR) : i]:
            if t.clause == clause and t.term in self.negators:
                return True
        for t in toks[i + n : i + n + NEAR]:
            if t.clause != clause or t.text in self.subclause_starts:
                break
            if t.term in self.negators:
                return True
            if not t.stop:
                break
        return False

    def _durations(self, toks: Sequence[Token]) -> list[float]:
        """Days mentioned in the message ("7 uger", "to måneder", "i flere måneder")."""
        days: list[float] = []
        for i, t in enumerate(toks):
            unit = self.unit_days.get(t.term)
            if unit is None:
                continue
            for back in (1, 2):
                if i - back >= 0 and toks[i - back].number is not None:
                    days.append(float(toks[i - back].number or 0) * unit)
                    break
            else:
                days.append(float(VAGUE_COUNT * unit))
        return days
