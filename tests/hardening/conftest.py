"""Hardening tests: fuzzed arguments, numerical stability, determinism, atomic writes, read-only install.

At the end of a session that ran fuzz tests, prints how many generated cases were tried and how
many ended as required (see fuzz_harness.py), per group and in total.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_terminal_summary(terminalreporter):
    harness = sys.modules.get("fuzz_harness")
    if harness is None or not harness.COUNTS:
        return
    counts = harness.COUNTS
    terminalreporter.section("fuzz cases (tried / passed)")
    for group in sorted(counts):
        tried, passed = counts[group]
        terminalreporter.write_line(f"{group:<28} {tried:6d} / {passed:6d}")
    tried = sum(c[0] for c in counts.values())
    passed = sum(c[1] for c in counts.values())
    terminalreporter.write_line(f"{'total':<28} {tried:6d} / {passed:6d}")
