"""Character-level normalisation: the one way æ/ø/å are folded, so 'knæ', 'knae' and 'kna'
meet wherever text is compared, and the one way typed text is cleaned."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_FOLD = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "ä": "ae", "ö": "oe", "ü": "u"})
AEOEAA = frozenset({"æ", "ø", "å"})


def spell_out(word: str) -> str:
    """æ/ø/å written as ae/oe/aa, as a runner without a Danish keyboard types them."""
    return word.lower().translate(_FOLD)


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """An ASCII skeleton where æ/ø/å written as ae/oe/aa, or dropped to a/o, meet."""
    w = unicodedata.normalize("NFKD", spell_out(word))
    w = "".join(c for c in w if not unicodedata.combining(c))
    return w.replace("aa", "a").replace("oe", "o").replace("ae", "a")


def unfold(word: str) -> str:
    """The æ/ø/å a word written as ae/oe/aa stands for ("laast" -> "låst")."""
    return word.lower().replace("aa", "å").replace("ae", "æ").replace("oe", "ø")


_KEEP_PUNCT = set("-?.,!:;/+%'")


def clean(text: str) -> str:
    """Lowercase, NFC, and control characters, emoji and symbols turned into spaces."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text).lower():
        cat = unicodedata.category(ch)
        if cat[0] in "LN" or ch in _KEEP_PUNCT:
            out.append(ch)
        elif ch == "\n":
            out.append(" . ")
        else:
            out.append(" ")
    return re.sub(r"\s+", " ", "".join(out)).strip()
