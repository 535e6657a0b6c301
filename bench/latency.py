"""Per-message latency of the matcher in process: p50 and p99 over the dev set, after warm-up.

Each round uses a fresh decision cache, so this measures matching, not the cache.
Run: .venv/bin/python bench/latency.py [EVAL.yaml] [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.answers import render  # noqa: E402
from bot.ask import load_all  # noqa: E402
from bot.evaluate import load_cases  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "file", nargs="?", default=str(ROOT.parent / "shared" / "eval" / "dev.yaml")
    )
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    messages = [c.q for c in load_cases(Path(args.file))]
    kb, matcher = load_all()
    for text in messages:  # warm-up: spaCy, word caches
        render(kb, matcher.decide(text))
    times: list[float] = []
    cpu: list[float] = []
    for _ in range(args.rounds):
        matcher._cache.clear()
        matcher.proc.analyse.cache_clear()
        for text in messages:
            start, start_cpu = time.perf_counter(), time.thread_time()
            render(kb, matcher.decide(text))
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)
    # Anchor, measured in the same run: spaCy's tokenizer alone on the same messages.
    import spacy

    tokenizer = spacy.blank("da").tokenizer
    anchor: list[float] = []
    for _ in range(args.rounds):
        for text in messages:
            start = time.perf_counter()
            tokenizer(text)
            anchor.append((time.perf_counter() - start) * 1000)
    print(f"messages {len(messages)} x {args.rounds} rounds = {len(times)} decisions")
    for name, values in (("wall", times), ("cpu ", cpu), ("anchor: spaCy tokenizer alone", anchor)):
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(
            f"{name}: p50 {statistics.median(values):.2f} ms   p99 {p99:.2f} ms"
            f"   max {values[-1]:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
