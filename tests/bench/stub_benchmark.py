"""A stand-in benchmark for the suite's tests: prints two result lines among others, exits with the given status."""

from __future__ import annotations

import sys

from benchmarks.report import Figure

if __name__ == "__main__":
    print("warming up")
    print(Figure("stub load: 10 docs/s", "stub anchor: 20 docs/s", "0.50x", "≥ 0.7x", False).line())
    print(Figure("stub latency: p99 5 ms", "stub bare: p99 4 ms", "1.25x", "≤ 2x", True).line())
    raise SystemExit(int(sys.argv[1]))
