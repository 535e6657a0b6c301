"""Matching Danish runner messages to the knowledge: features, the learned ranker, the lemma
and fuzzy evidence, red flags and the fused decision."""

from bot.matching.decision import Candidate, Decision, Kind
from bot.matching.matcher import Matcher

__all__ = ["Candidate", "Decision", "Kind", "Matcher"]
