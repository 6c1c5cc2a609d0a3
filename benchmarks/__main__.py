"""``python -m benchmarks [suite ...]``: run the named suites (all by default)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

from benchmarks.harness import Report


def suites() -> list[str]:
    folder = Path(__file__).parent
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(folder)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    names = argv or suites()
    unknown = sorted(set(names) - set(suites()))
    if unknown:
        print(f"unknown suites {unknown}; known: {suites()}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name}", flush=True)
        report = Report(name)
        importlib.import_module(f"benchmarks.bench_{name}").run(report)
        report.save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
