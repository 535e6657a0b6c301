"""The schemas of the knowledge's YAML files (pydantic), one model per kind of file.

bot/knowledge.py loads the files into these models; a model's validation error
becomes a `path:line: message` problem.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TELEGRAM_TEXT_LIMIT = 4096
ID_PATTERN = r"^[a-z0-9_.]+$"
# Longest id that still fits a callback payload such as "fb:+:<id>" or "pick:<id>".
MAX_ID_BYTES = 40


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


NonEmpty = Field(min_length=1)


class Guide(_Model):
    """One of the three guides: its id is part of the `ask --json` contract."""

    id: str = Field(pattern=ID_PATTERN)
    title: str = NonEmpty
    source: str = Field(min_length=1, description="How replies name this guide as a source")
    file: str = Field(min_length=1, description="The guide's full text, relative to knowledge/")
    short: str = Field(min_length=1, description="Button label when asking which guide")
    hamstring: bool = False
    context_words: list[str] = Field(default_factory=list)
    # Words that point to this guide only when nothing else does: the proximal guide
    # calls its subject plain "hasetendinopati", so the bare word means proximal unless
    # the message or the user's chosen guide says otherwise.
    weak_context_words: list[str] = Field(default_factory=list)
    # The two questions onboarding suggests to this guide's users: each must be one this
    # guide answers (tests/test_dialogs_onboarding.py asks them), or the first thing a new
    # user tries is "I don't know".
    try_asking: list[str] = Field(min_length=2, max_length=2)


class GuidesFile(_Model):
    guides: list[Guide] = Field(min_length=1)


class Entry(_Model):
    """A FAQ answer or a guide section: example phrasings kept apart from the quoted answer."""

    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_BYTES)
    title: str = NonEmpty
    source: str = NonEmpty
    text: str = NonEmpty
    examples: list[str] = Field(min_length=2)
    topic: str | None = Field(default=None, pattern=ID_PATTERN)
    phase: int | None = Field(default=None, ge=1, le=4)
    related: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    # Extra the bot adds after the quote: "traffic_light" shows the zones of
    # traffic_light.yaml (the guides' own table of them was a picture).
    attach: Literal["traffic_light"] | None = None

    @field_validator("examples", "keywords")
    @classmethod
    def _no_blank(cls, items: list[str]) -> list[str]:
        if any(not item.strip() for item in items):
            raise ValueError("must not contain empty phrasings")
        return items


class GuideKnowledgeFile(_Model):
    guide: str = Field(pattern=ID_PATTERN)
    faq: list[Entry] = Field(default_factory=list)
    sections: list[Entry] = Field(default_factory=list)


class Temperature(_Model):
    """A body temperature written as a number ("har 38,9"): it counts as a phrase of the
    flag's first all_of group."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Temperature:
        if self.min >= self.max:
            raise ValueError("min must be below max")
        return self


class RedFlag(_Model):
    """A warning sign from the guides; matching is by groups of alternative terms."""

    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_BYTES)
    guides: list[str] = Field(min_length=1)
    guide_text: str = Field(min_length=1, description="The red flag in the guide's own words")
    all_of: list[list[str]] = Field(min_length=1)
    none_of: list[str] = Field(default_factory=list)
    min_weeks: int | None = Field(default=None, ge=1)
    temperature: Temperature | None = None
    fears_do_not_count: bool = Field(
        default=False,
        description="A sign only feared (fear_starts in knowledge/lang) does not count",
    )
    examples: list[str] = Field(min_length=1)
    not_examples: list[str] = Field(default_factory=list)

    @field_validator("all_of")
    @classmethod
    def _groups_not_empty(cls, groups: list[list[str]]) -> list[list[str]]:
        if any(not group or any(not t.strip() for t in group) for group in groups):
            raise ValueError("every group needs at least one non-empty term")
        return groups


class RedFlagsFile(_Model):
    red_flags: list[RedFlag] = Field(min_length=1)


class LemmasFile(_Model):
    """knowledge/lang/lemmas.yaml: form -> lemma fixes for spaCy's Danish lookup table."""

    lemmas: dict[str, str] = Field(default_factory=dict)


class SynonymsFile(_Model):
    """canonical word -> variants users type (slang, English, split compounds)."""

    synonyms: dict[str, list[str]]


class OutOfScopeTopic(_Model):
    topic: str = Field(pattern=ID_PATTERN)
    examples: list[str] = Field(min_length=1)

    @field_validator("examples")
    @classmethod
    def _no_blank(cls, items: list[str]) -> list[str]:
        if any(not item.strip() for item in items):
            raise ValueError("must not contain empty phrasings")
        return items


class OutOfScopeFile(_Model):
    """Things the guides do not answer: the matcher learns to say so from them."""

    out_of_scope: list[OutOfScopeTopic] = Field(default_factory=list)


class Zone(_Model):
    id: Literal["green", "yellow", "red"]
    label: str = NonEmpty
    symbol: str = NonEmpty
    max_pain: int = Field(ge=0, le=10)
    progression: bool = False
    advice: dict[str, str] = Field(min_length=1)


class TrendRules(_Model):
    green_streak_days: int = Field(default=3, ge=2)
    red_streak_days: int = Field(default=2, ge=2)
    no_improvement_weeks: int = Field(default=6, ge=1)
    window_days: int = Field(default=7, ge=1, le=31)
    empty_symbol: str = "⚪"


class TrafficLight(_Model):
    source: str = NonEmpty
    morning_worse_zone: Literal["green", "yellow", "red"] = "red"
    zones: list[Zone] = Field(min_length=3, max_length=3)
    trend: TrendRules = TrendRules()

    def zone_for(self, pain: int, morning_worse: bool) -> Zone:
        """Pain during/after activity picks the zone; a worse morning overrides it."""
        if morning_worse:
            return self.zone(self.morning_worse_zone)
        for zone in sorted(self.zones, key=lambda z: z.max_pain):
            if pain <= zone.max_pain:
                return zone
        return max(self.zones, key=lambda z: z.max_pain)

    def zone(self, zone_id: str) -> Zone:
        return next(z for z in self.zones if z.id == zone_id)


class Intent(_Model):
    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_BYTES)
    action: str = Field(pattern=ID_PATTERN)
    reply: str | None = None
    examples: list[str] = Field(min_length=2)
    tests: list[str] = Field(default_factory=list)
    not_tests: list[str] = Field(default_factory=list)

    # A command's action from bot/dialogs/commands.py, or "reply"; checked by bot/references.py.
