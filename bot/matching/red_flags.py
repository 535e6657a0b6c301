"""Red flags: the guides' warning signs, found by rules a maintainer can read and test
(knowledge/red_flags.yaml: groups of alternative terms, exclusions, a minimum duration).

Rules, not the learned ranker, because a missed red flag is the one mistake the bot must not
make and every phrasing that has to fire is written down as a test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.fold import fold
from bot.knowledge import Knowledge, RedFlag
from bot.textproc import Analysis, TextProcessor, Token, find_phrase

MAX_FILLERS = 2  # intensifiers in a row inside a phrase ("helt vildt")
NEAR = 3  # words either side of a phrase a negator reaches ("ingen hævelse", "vækker mig ikke")
VAGUE_COUNT = 2  # "i måneder": a plural unit with no count before it counts this many times
MORE = 0.5  # "over en måned": a little more than the count, half a unit
SINCE_REACH = 6  # words after "siden" its date may come ("siden jeg startede i februar")
MONTH_DAY_MAX = 31
FIRST_YEAR = 1900  # "siden 2024": a number this large after "siden" is a year


@dataclass(frozen=True)
class _Group:
    """One all_of group's phrases, indexed by their first term (groups hold hundreds)."""

    by_first: dict[str, tuple[tuple[str, ...], ...]]

    @classmethod
    def of(cls, phrases: Sequence[tuple[str, ...]]) -> _Group:
        index: dict[str, list[tuple[str, ...]]] = {}
        for seq in phrases:
            index.setdefault(seq[0], []).append(seq)
        return cls({first: tuple(seqs) for first, seqs in index.items()})

    def present(self, vocab: frozenset[str]) -> list[tuple[str, ...]]:
        """The phrases whose every term occurs somewhere in the message."""
        return [
            seq
            for first in vocab & self.by_first.keys()
            for seq in self.by_first[first]
            if all(t in vocab for t in seq[1:])
        ]


@dataclass(frozen=True)
class _Flag:
    flag: RedFlag
    groups: tuple[_Group, ...]
    none_of: tuple[tuple[str, ...], ...]


class RedFlags:
    def __init__(
        self, kb: Knowledge, proc: TextProcessor, clock: Callable[[], date] = date.today
    ) -> None:
        """`clock`: today's date, for spans such as "siden februar" when `find` is given none."""
        self.proc = proc
        self.clock = clock
        self.negators = proc.negators
        # "uden", "didn't": these negate what follows, not what came before ("tabt mig uden grund").
        self.forward = kb.vocab.folded("forward_negators") | kb.vocab.folded(
            "english_forward_negators"
        )
        self.any_negator = self.negators | self.forward
        self.subclause_starts = kb.vocab.words("subclause_starts")
        self.bridges = kb.vocab.folded("negation_bridges")
        self.negation_stops = kb.vocab.folded("negation_stops")
        self.negation_lists = kb.vocab.folded("negation_lists")
        # Words as typed that the knowledge knows (no typo guess): what an exclusion needs.
        self.typed_forms = frozenset(fold(w) for w in proc.table.lemmas)
        self.hypothetical = tuple(
            tuple(fold(w) for w in p.split()) for p in kb.vocab.words("hypothetical_starts")
        )
        # For a flag about a change ("bliver værre"), a feared change is no sign of one; for
        # the others, a fear ("bange for at den er sprængt") often comes with the sign itself.
        # A fear reaches to the next "og", "for", "men": in "bange for at løbe for det gør
        # stadig ondt" the pain is no fear.
        self.fears = tuple(tuple(fold(w) for w in p.split()) for p in kb.vocab.words("fear_starts"))
        self.fear_ends = self.negation_stops | {
            fold(w) for p in kb.vocab.words("runon_breaks") for w in p.split()
        }
        self.temperature_before = kb.vocab.folded("temperature_before")
        self.measure_units = kb.vocab.folded("count_units")
        self.decimal_words = kb.vocab.folded("decimal_words")
        self.phrase_fillers = kb.vocab.folded("phrase_fillers")
        self.durations = Durations(kb, proc)
        self.flags = [self._compile(rf) for rf in kb.red_flags]

    def _phrase(self, text: str) -> tuple[str, ...]:
        return tuple(t.term for t in self.proc.analyse(text).tokens)

    def _compile(self, rf: RedFlag) -> _Flag:
        groups = tuple(_Group.of([s for t in g if (s := self._phrase(t))]) for g in rf.all_of)
        none_of = tuple(s for t in rf.none_of if (s := self._phrase(t)))
        return _Flag(rf, groups, none_of)

    def find(self, a: Analysis, today: date | None = None) -> tuple[str, ...]:
        """The ids of the flags the message shows; `today` dates "siden februar" (default:
        the clock)."""
        days: list[float] | None = None
        fired: list[str] = []
        for f in self.flags:
            if not self._fires(f, a):
                continue
            if f.flag.min_weeks is not None:
                if days is None:
                    days = self.durations.days(a.tokens, today or self.clock())
                if not days or max(days) < 7 * f.flag.min_weeks:
                    continue
            fired.append(f.flag.id)
        return tuple(fired)

    def _fires(self, f: _Flag, a: Analysis) -> bool:
        """Every group is there, affirmed, and no exclusion (the duration is checked apart)."""
        # The message's vocabulary writes every number as <num>; a phrase may name one ("0
        # fremgang"), so the numbers as typed join the quick filter.
        toks = a.tokens
        vocab = a.vocabulary | {t.term for t in toks if t.text[:1].isdigit()}
        warm = self._temperatures(f, toks)
        # Quick reject: every group needs a phrase whose words all occur somewhere.
        present = []
        for n, group in enumerate(f.groups):
            if not (found := group.present(vocab)) and not (n == 0 and warm):
                return False
            present.append(found)
        for seq in f.none_of:
            if seq[0] in vocab and any(
                self._excludes(toks, i, j, seq, present) for i, j in self._spans(toks, seq)
            ):
                return False
        if warm and not any(not self._negated(toks, i, 1) for i in warm):
            warm = []
        fears = f.flag.fears_do_not_count
        return all(
            (n == 0 and bool(warm)) or any(self._affirmed(toks, seq, fears) for seq in found)
            for n, found in enumerate(present)
        )

    def _temperatures(self, f: _Flag, toks: Sequence[Token]) -> list[int]:
        """Where a flag's temperature is written as a number: a decimal in its range ("har
        38,9"), or a whole number right after a word such as "har" ("har 39 og ondt"); not
        a measure ("38,5 km", "uge 39") and not an age ("jeg er 39"). A dictated decimal
        ("38 komma 9") is a decimal."""
        r = f.flag.temperature
        if r is None:
            return []
        out = []
        for i, t in enumerate(toks):
            if t.number is None or not t.text[:1].isdigit() or not r.min <= t.number <= r.max:
                continue
            near = [toks[k] for k in (i - 1, i + 1) if 0 <= k < len(toks)]
            if any(fold(u.text) in self.measure_units for u in near):
                continue
            decimal = "," in t.text or "." in t.text.rstrip(".") or self._dictated_decimal(toks, i)
            if decimal or (i > 0 and fold(toks[i - 1].text) in self.temperature_before):
                out.append(i)
        return out

    def _excludes(
        self,
        toks: Sequence[Token],
        i: int,
        j: int,
        seq: tuple[str, ...],
        present: list[list[tuple[str, ...]]],
    ) -> bool:
        """An exclusion at toks[i] holds when typed as written and not itself denied: "har
        ikke ændret kost" is no reason for a weight loss. One that shares words with the
        sign's own phrase only tells what that phrase means ("kan ikke gå i fitness"), and a
        denial ("ingen hævelse") excludes as it is."""
        if not self._as_typed(toks, i, j - i):
            return False
        if any(t in self.any_negator for t in seq) or not self._negated(toks, i, j - i):
            return True
        return any(
            k < j and i < end
            for found in present
            for phrase in found
            for k, end in self._spans(toks, phrase)
        )

    def _spans(self, toks: Sequence[Token], seq: tuple[str, ...]) -> list[tuple[int, int]]:
        """Where a phrase occurs, as (start, end): up to MAX_FILLERS small intensifiers may
        stand between two of its words ("bliver bare værre" is "bliver værre", "føles helt
        vildt svagt" is "føles svagt"); a one-word phrase also matches a compound's part."""
        if len(seq) == 1:
            return [(i, i + 1) for i in find_phrase(toks, seq)]
        out = []
        for i, tok in enumerate(toks):
            if tok.term != seq[0]:
                continue
            j = i + 1
            for term in seq[1:]:
                skipped = 0
                while (
                    skipped < MAX_FILLERS
                    and j + 1 < len(toks)
                    and toks[j].term != term
                    and toks[j].clause == tok.clause
                    and fold(toks[j].text) in self.phrase_fillers
                ):
                    j, skipped = j + 1, skipped + 1
                if j >= len(toks) or toks[j].term != term:
                    break
                j += 1
            else:
                out.append((i, j))
        return out

    def _as_typed(self, toks: Sequence[Token], i: int, n: int) -> bool:
        """The words at toks[i:i+n] were typed as words the knowledge knows, not guessed by the
        typo correction: an exclusion stops a whole flag, so a guess may not ("took a nasty
        fall": "nasty" is corrected to "næsten", and "faldt næsten" must not hide the fall)."""
        return all(
            t.number is not None or all(fold(w) in self.typed_forms for w in t.text.split())
            for t in toks[i : i + n]
        )

    def _affirmed(self, toks: Sequence[Token], seq: tuple[str, ...], fears: bool = False) -> bool:
        """The phrase occurs, not in a hypothetical clause ("hvad hvis det bliver hævet") nor,
        for `fears`, as what is feared ("bange for at det bliver værre"), and is not negated
        nearby in its clause ("det vækker mig ikke")."""
        hits = [
            (i, j)
            for i, j in self._spans(toks, seq)
            if not _after(toks, i, self.hypothetical)
            and not (fears and _after(toks, i, self.fears, self.fear_ends))
        ]
        if any(t in self.any_negator for t in seq):
            return bool(hits)
        return any(not self._negated(toks, i, j - i) for i, j in hits)

    def _dictated_decimal(self, toks: Sequence[Token], i: int) -> bool:
        return (
            i + 2 < len(toks)
            and fold(toks[i + 1].text) in self.decimal_words
            and toks[i + 2].number is not None
        )

    def _negated(self, toks: Sequence[Token], i: int, n: int) -> bool:
        """A negator up to NEAR words before ("ingen hævelse"), further along a list ("ingen
        hævelse eller blå mærker"), but not across "og" ("ikke hævet og vækker mig om natten":
        the night pain is affirmed); or right after, across only pronouns and small adverbs
        ("det vækker mig ikke", "den låser sig ikke"; not "knæet vil ikke gå ned", not "tabt
        mig og har ingen appetit"); in the same clause ("om natten at jeg ikke kan sove": that
        "ikke" belongs to the next clause)."""
        clause = toks[i].clause
        k, reach = i - 1, NEAR
        while k >= 0 and reach > 0:
            t = toks[k]
            if t.clause != clause or fold(t.text) in self.negation_stops:
                break
            if t.term in self.negators:
                return True
            if fold(t.text) in self.forward or t.term in self.forward:
                # "kan ikke sove uden at vågne af smerter": a double negative affirms.
                return not any(u.clause == clause and u.term in self.negators for u in toks[:k])
            # "ingen hævelse eller blå mærker": the negator reaches along a list.
            reach = NEAR + 2 if fold(t.text) in self.negation_lists else reach
            k, reach = k - 1, reach - 1
        for t in toks[i + n : i + n + NEAR]:
            if t.clause != clause or t.text in self.subclause_starts:
                break
            if t.term in self.negators:
                return True
            if fold(t.text) not in self.bridges:
                break
        return False


def _keys(tok: Token) -> tuple[str, ...]:
    """What a token is looked up by: its folded typed form, then its term ("d." is "d")."""
    return (fold(tok.text.rstrip(".")), tok.term)


def _whole(tok: Token) -> float | None:
    """The number a token is, ordinals written with a dot included ("3." in "d. 3. maj")."""
    if tok.number is not None:
        return tok.number
    digits = tok.text.rstrip(".")
    return float(digits) if digits.isascii() and digits.isdigit() else None


class Durations:
    """How long something has lasted, in days, from what runners write: "7 uger", "to
    måneder", "et par måneder", "halvandet år", "over en måned", "i månedsvis", and spans
    from a date to today: "siden februar", "siden starten af januar", "siden jul",
    "since Easter". Every word comes from knowledge/lang/time.yaml and numbers.yaml."""

    def __init__(self, kb: Knowledge, proc: TextProcessor) -> None:
        v = kb.vocab
        self.proc = proc
        self.units = self._index(proc, v.mapping("unit_days"))
        self.singular = v.folded("unit_alone")  # typed form: "uger" has the term of "uge"
        self.counts = self._index(proc, v.mapping("duration_counts"))
        self.halves = self._index(proc, v.mapping("duration_halves"))
        self.vague = self._index(proc, v.mapping("vague_spans"))
        self.more = tuple(tuple(fold(w) for w in p.split()) for p in v.words("duration_more"))
        self.ands = v.folded("duration_and")
        self.since = v.folded("since_words")
        self.count_fillers = v.folded("count_fillers")
        self.parts = self._index(proc, v.mapping("month_parts"))
        self.months = self._index(proc, v.mapping("months"))
        self.points = self._index(proc, v.mapping("date_points"))
        self.easter = self._index(proc, v.mapping("easter_days"))

    @staticmethod
    def _index(proc: TextProcessor, mapping: Mapping[str, int]) -> dict[str, int]:
        """Folded words and their terms -> value; a term two words with different values
        share (a lemma or a typo fix) is left out, the folded words still count."""
        out = {fold(w): n for w, n in mapping.items()}
        by_term: dict[str, set[int]] = {}
        for w, n in mapping.items():
            terms = proc.terms_of(w)
            if len(terms) == 1:
                by_term.setdefault(terms[0], set()).add(n)
        for term, values in by_term.items():
            if len(values) == 1 and term not in out:
                out[term] = values.pop()
        return out

    @staticmethod
    def _get(table: Mapping[str, int], tok: Token) -> int | None:
        for key in _keys(tok):
            if key in table:
                return table[key]
        return None

    def days(self, toks: Sequence[Token], today: date) -> list[float]:
        """Every duration the message mentions, in days."""
        out: list[float] = []
        for i, t in enumerate(toks):
            if (unit := self._get(self.units, t)) is not None:
                out.append(self._count(toks, i) * unit)
            elif (vague := self._get(self.vague, t)) is not None:
                out.append(float(vague))
            elif fold(t.text) in self.since and (start := self._since(toks, i, today)):
                out.append(float((today - start).days))
        return out

    def _count(self, toks: Sequence[Token], i: int) -> float:
        """How many units: the count before toks[i], plus "og et halvt" after it."""
        count = self._count_before(toks, i)
        if count is None:
            count = 1.0 if fold(toks[i].text) in self.singular else float(VAGUE_COUNT)
        then = toks[i + 1 : i + 4]
        if (
            then
            and fold(then[0].text) in self.ands
            and any(self._get(self.halves, t) == 1 for t in then[1:])
        ):
            count += 0.5  # "et år og et halvt"
        return count

    def _count_before(self, toks: Sequence[Token], i: int) -> float | None:
        j = i - 1
        while j >= 0 and fold(toks[j].text) in self.count_fillers and j > i - 3:
            j -= 1  # "a couple of months"
        if j < 0:
            return None
        tok = toks[j]
        if (halves := self._get(self.halves, tok)) is not None:
            value = halves / 2
            k = j - 1
            if k >= 0 and self._number(toks[k]) == 1:
                k -= 1  # "et halvt år"
            if k >= 1 and fold(toks[k].text) in self.ands and (n := self._number(toks[k - 1])):
                value += n  # "to og et halvt år"
            return value
        n = self._number(tok)
        if n is None:
            return None
        if j >= 1 and toks[j - 1].number is not None and self._get(self.counts, tok):
            j -= 1  # "et par"
        if j >= 1 and n == 1 and (halves := self._get(self.halves, toks[j - 1])) is not None:
            return halves / 2  # "half a year"
        return n + MORE if self._more_before(toks, j) else n

    def _number(self, tok: Token) -> float | None:
        if tok.number is not None:
            return tok.number
        n = self._get(self.counts, tok)
        return None if n is None else float(n)

    def _more_before(self, toks: Sequence[Token], j: int) -> bool:
        words = [fold(t.text) for t in toks[max(0, j - 3) : j]]
        return any(len(p) <= len(words) and tuple(words[-len(p) :]) == p for p in self.more)

    def _since(self, toks: Sequence[Token], i: int, today: date) -> date | None:
        """The date "siden ..." names within a few words of its clause, at most today ("siden
        februar": the 1st of the last February; "siden jul": the last Christmas Eve; "siden
        slutningen af maj": the 25th; "siden jeg startede i marts")."""
        day: int | None = None
        for k in range(i + 1, min(len(toks), i + 1 + SINCE_REACH)):
            tok = toks[k]
            if tok.clause != toks[i].clause:
                return None
            if (part := self._get(self.parts, tok)) is not None:
                day = part
            elif (month := self._get(self.months, tok)) is not None:
                year = self._year_after(toks, k)
                return _last(today, month, day or 1, year)
            elif (point := self._get(self.points, tok)) is not None:
                return _last(today, point // 100, point % 100, None)
            elif (offset := self._get(self.easter, tok)) is not None:
                start = _easter(today.year) + timedelta(days=offset)
                if start > today:
                    start = _easter(today.year - 1) + timedelta(days=offset)
                return start
            elif (n := _whole(tok)) is not None and FIRST_YEAR <= n <= today.year:
                return date(int(n), 1, 1)
            elif n is not None and 1 <= n <= MONTH_DAY_MAX:
                day = int(n)
        return None

    @staticmethod
    def _year_after(toks: Sequence[Token], k: int) -> int | None:
        if k + 1 < len(toks) and (n := toks[k + 1].number) is not None and n >= FIRST_YEAR:
            return int(n)
        return None


def _last(today: date, month: int, day: int, year: int | None) -> date | None:
    """The latest date with this month and day that is not after today (or in `year`)."""
    for y in (year,) if year is not None else (today.year, today.year - 1):
        try:
            d = date(y, month, day)
        except ValueError:
            continue
        if d <= today:
            return d
    return None


def _easter(year: int) -> date:
    """Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def _after(
    toks: Sequence[Token],
    i: int,
    starts: Sequence[tuple[str, ...]],
    ends: frozenset[str] = frozenset(),
) -> bool:
    """One of `starts` ("hvad hvis") earlier in the clause of toks[i], with none of `ends`
    between it and toks[i]."""
    clause = toks[i].clause
    words = [fold(t.text) for t in toks[:i] if t.clause == clause]
    return any(
        tuple(words[k : k + len(h)]) == h and ends.isdisjoint(words[k + len(h) :])
        for h in starts
        for k in range(len(words))
    )
