"""Run every benchmark module (``python -m benchmarks [name ...]``) and print their tables."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names: list[str]) -> None:
    """Run ``bench_*.py`` modules (all, or those named) one after another."""
    folder = Path(__file__).parent
    modules = sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if m.name.startswith("bench_"))
    if names:
        modules = [m for m in modules if m in names or m.removeprefix("bench_") in names]
    for name in modules:
        print(f"\n## {name}\n", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        module.main()


if __name__ == "__main__":
    main(sys.argv[1:])
