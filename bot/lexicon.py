"""Danish number words: one reading lexicon for every parser of typed answers.

Pain scores ("fire"), clock times ("halv otte"), pause lengths ("to uger") and phase
numbers ("fase tre") all read numbers the same way. Nothing here is shown to users.
"""

from __future__ import annotations

NUMBER_WORDS: dict[str, int] = {
    "nul": 0,
    "en": 1,
    "et": 1,
    "én": 1,
    "ét": 1,
    "to": 2,
    "tre": 3,
    "fire": 4,
    "fem": 5,
    "seks": 6,
    "syv": 7,
    "otte": 8,
    "ni": 9,
    "ti": 10,
    "elleve": 11,
    "tolv": 12,
    "tretten": 13,
    "fjorten": 14,
    "femten": 15,
    "seksten": 16,
    "sytten": 17,
    "atten": 18,
    "nitten": 19,
    "tyve": 20,
    "enogtyve": 21,
    "toogtyve": 22,
    "treogtyve": 23,
    "femogtyve": 25,
    "tredive": 30,
    "fyrre": 40,
    "halvtreds": 50,
    "tres": 60,
    "halvfjerds": 70,
    "firs": 80,
    "halvfems": 90,
    "hundrede": 100,
}

# Ordinals that name a phase or a step ("første fase"); "anden" is left out because it
# usually means "other".
ORDINALS: dict[str, int] = {"første": 1, "tredje": 3, "fjerde": 4, "femte": 5, "sjette": 6}
