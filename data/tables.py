"""Import every module that defines tables, so ``Base.metadata`` is complete."""

from __future__ import annotations

import importlib

# Modules that declare tables. A missing optional module is skipped so the
# foundation works before later features land.
TABLE_MODULES = ("data.models", "data.registry", "data.analysis_cache", "data.monitoring")


def import_all_tables() -> None:
    """Import the table modules that exist."""
    for name in TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
