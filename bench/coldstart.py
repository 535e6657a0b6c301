"""Cold start: process start to the first answer printed by `python -m bot ask` (median of 5 runs).

The first run warms the compact lemma-table cache (it is not counted).
Run: .venv/bin/python bench/coldstart.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def once() -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "ask", "kan jeg løbe med ondt under ballen?", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait()
    if not line.startswith("{"):
        raise SystemExit(f"no answer printed: {line!r}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"warm-up (fills the cache if needed): {once():.2f} s")
    runs = [once() for _ in range(args.runs)]
    print("runs: " + ", ".join(f"{r:.2f}" for r in runs) + " s")
    print(f"median cold start {statistics.median(runs):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
