"""Compile time of every catalogue stack for every target it supports (goal: under 50 ms each).

One compile is what ``POST /api/v1/stacks/{id}/compile`` does in Python: resolve the variables
(defaults, generators) and compile for the target; the first compile of a stack (template
caches cold) and the median of 50 more are printed, with parsing the definition as a baseline
measured in the same run. Run ``.venv/bin/python bench/stack_compile.py``; it prints a table and
exits 0. Nothing asserts on time.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import machine, table  # noqa: E402
from server.stacks.catalogue import CATALOGUE  # noqa: E402
from server.stacks.compiler import compile_stack  # noqa: E402
from server.stacks.spec import load_text, parse_definition  # noqa: E402
from server.stacks.variables import resolve  # noqa: E402

ROUNDS = 50
GOAL_MS = 50.0


def main() -> None:
    rows = []
    worst = 0.0
    for path in sorted(CATALOGUE.glob("*.yml")):
        text = path.read_text(encoding="utf-8")
        start = time.perf_counter()
        definition = parse_definition(load_text(text, path.name), path.name)
        parse_ms = (time.perf_counter() - start) * 1000
        for target in definition.metadata.targets:
            times = []
            for _ in range(ROUNDS + 1):
                start = time.perf_counter()
                values = resolve(definition.variables, {})
                compile_stack(definition, values, target)
                times.append((time.perf_counter() - start) * 1000)
            median = statistics.median(times[1:])
            worst = max(worst, times[0], median)
            rows.append(
                (path.stem, target, f"{parse_ms:.2f}", f"{times[0]:.2f}", f"{median:.2f}", f"{max(times[1:]):.2f}")
            )
    print(table(("stack", "target", "parse ms", "first compile ms", "median ms", "max ms"), rows))
    verdict = "met" if worst < GOAL_MS else "MISSED"
    print(f"\nslowest (first or median): {worst:.2f} ms; goal under {GOAL_MS:.0f} ms: {verdict}")
    print(machine())


if __name__ == "__main__":
    main()
