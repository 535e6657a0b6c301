"""What the user sees for an answer: the quote, its source, and attachments from YAML."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.answers import render_entry
from bot.knowledge import load_knowledge
from bot.settings import PROJECT_ROOT


def test_traffic_light_entries_show_the_zones_from_yaml(tmp_path: Path) -> None:
    kdir, idir = tmp_path / "knowledge", tmp_path / "intents"
    shutil.copytree(PROJECT_ROOT / "knowledge", kdir)
    shutil.copytree(PROJECT_ROOT / "intents", idir)
    kb = load_knowledge(kdir, idir)
    attached = [e.id for e in kb.entries.values() if e.attach == "traffic_light"]
    assert {kb.entry_guide[e] for e in attached} == {"proximal", "distal"}
    text = render_entry(kb, attached[0]).text
    assert kb.entries[attached[0]].text.strip() in text
    for zone in kb.traffic_light.zones:
        assert f"{zone.symbol} {zone.label}" in text
    assert "0-2/10" in text and "3-5/10" in text and "6-10/10" in text

    tl = kdir / "traffic_light.yaml"
    tl.write_text(
        tl.read_text(encoding="utf-8").replace("max_pain: 2", "max_pain: 3"), encoding="utf-8"
    )
    changed = render_entry(load_knowledge(kdir, idir), attached[0]).text
    assert "0-3/10" in changed and "4-5/10" in changed


def test_entries_without_attachment_are_just_quote_and_source() -> None:
    kb = load_knowledge(PROJECT_ROOT / "knowledge", PROJECT_ROOT / "intents")
    entry = next(e for e in kb.entries.values() if e.attach is None)
    text = render_entry(kb, entry.id).text
    assert text.startswith(entry.text.strip())
    assert entry.source in text and "🚦" not in text
