"""Turn a matcher Decision into the text and buttons the user sees.

Answers quote the guide and name their source; red flags put the doctor
advice first; clarify and fallback offer `pick:<entry_id>` buttons. Every
word comes from knowledge/texts/questions.yaml or the knowledge itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import protocol
from bot.knowledge import TELEGRAM_TEXT_LIMIT, Knowledge
from bot.matching import Candidate, Decision
from bot.replies import Button

LABEL_LIMIT = 40


@dataclass(frozen=True)
class Rendered:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()


def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1].rstrip() + "…"


def _fit(text: str) -> str:
    return text if len(text) <= TELEGRAM_TEXT_LIMIT else text[: TELEGRAM_TEXT_LIMIT - 1] + "…"


def traffic_light_text(kb: Knowledge) -> str:
    """The zones with their pain ranges, from traffic_light.yaml."""
    tl = kb.traffic_light
    lines = [kb.text("traffic_light_intro")]
    low = 0
    for zone in sorted(tl.zones, key=lambda z: z.max_pain):
        lines.append(
            kb.text(
                "traffic_light_zone",
                symbol=zone.symbol,
                label=zone.label,
                low=low,
                high=zone.max_pain,
            )
        )
        low = zone.max_pain + 1
    morning = tl.zone(tl.morning_worse_zone)
    lines.append(kb.text("traffic_light_morning", symbol=morning.symbol, label=morning.label))
    lines.append(kb.text("traffic_light_source", source=tl.source))
    return "\n".join(lines)


def entry_text(kb: Knowledge, entry_id: str) -> str:
    """The quoted answer and its source line (plus an attachment the entry asks for)."""
    entry = kb.entries[entry_id]
    guide = kb.guides[kb.entry_guide[entry_id]]
    source = kb.text("answer_source", source=guide.source, section=entry.source)
    text = f"{entry.text.strip()}\n\n{source}"
    if entry.attach == "traffic_light":
        text += "\n\n" + traffic_light_text(kb)
    return text


def render_entry(kb: Knowledge, entry_id: str) -> Rendered:
    """The answer for a pressed `pick:<entry_id>` button (old buttons may name removed ones)."""
    if entry_id not in kb.entries:
        return Rendered(kb.text("entry_missing"))
    return Rendered(_fit(entry_text(kb, entry_id)))


def _pick_buttons(
    kb: Knowledge, cands: tuple[Candidate, ...], by_guide: bool
) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = []
    seen: set[str] = set()
    for c in cands:
        if c.entry_id in seen or c.entry_id not in kb.entries:
            continue
        seen.add(c.entry_id)
        if by_guide and c.guide in kb.guides:
            label = kb.guides[c.guide].short
        else:
            label = kb.entries[c.entry_id].title
        rows.append((Button(_label(label), protocol.encode(protocol.PICK, c.entry_id)),))
        if len(rows) == 3:
            break
    return tuple(rows)


def red_flag_text(kb: Knowledge, flag_ids: tuple[str, ...]) -> str:
    """The warning signs in the guide's words, and the advice to see a doctor."""
    flags = {rf.id: rf for rf in kb.red_flags}
    parts = [kb.text("red_flag_intro")]
    quoted: set[str] = set()
    for fid in flag_ids:
        rf = flags.get(fid)
        if rf is not None and rf.guide_text not in quoted:
            quoted.add(rf.guide_text)
            parts.append(kb.text("red_flag_item", guide_text=rf.guide_text))
    return "\n".join(parts) + "\n\n" + kb.text("red_flag_advice")


def _answer_text(kb: Knowledge, decision: Decision) -> str:
    """The answer's passage, then the related one the decision quotes with it."""
    ids = [decision.entry_id or "", *decision.also]
    return "\n\n".join(entry_text(kb, e) for e in ids if e in kb.entries)


def render(kb: Knowledge, decision: Decision) -> Rendered:
    """The reply for a decision; always non-empty and within Telegram's limit."""
    kind = decision.kind
    if kind == "answer" and decision.entry_id in kb.entries:
        return Rendered(_fit(_answer_text(kb, decision)))
    if kind == "red_flag":
        text = red_flag_text(kb, decision.red_flags)
        if decision.entry_id in kb.entries:
            text += "\n\n" + kb.text("red_flag_then_answer") + "\n\n" + _answer_text(kb, decision)
        return Rendered(_fit(text))
    if kind == "intent":
        intent = next((i for i in kb.intents if i.id == decision.intent_id), None)
        if intent is not None and intent.reply:
            return Rendered(_fit(intent.reply))
        return Rendered(kb.text("intent_ok"))
    if kind == "clarify":
        guides = {c.guide for c in decision.candidates}
        topics = {
            kb.entries[c.entry_id].topic for c in decision.candidates if c.entry_id in kb.entries
        }
        by_guide = (
            len(guides) == len(decision.candidates) > 1 and len(topics) == 1 and None not in topics
        )
        key = "clarify_guide" if by_guide else "clarify_topic"
        buttons = _pick_buttons(kb, decision.candidates, by_guide)
        if buttons:
            return Rendered(kb.text(key), buttons)
    # fallback (and anything that cannot be shown as asked)
    buttons = _pick_buttons(kb, decision.candidates[:3], False)
    parts = [kb.text("fallback")]
    if buttons:
        parts.append(kb.text("fallback_suggest"))
    parts.append(kb.text("fallback_hint"))
    return Rendered("\n\n".join(parts), buttons)
