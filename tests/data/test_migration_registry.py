"""Migration 0002 creates exactly the registry tables the models declare, and downgrades cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect

from data.migrate import alembic_config

TABLES = ("models", "model_versions", "analysis_results")


def test_0002_matches_the_declared_tables_and_downgrades(tmp_path):
    import data.analysis_cache
    import data.registry

    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0002")
    engine = create_engine(url)
    try:
        assert set(TABLES) <= set(inspect(engine).get_table_names())
        declared = MetaData()
        for table in (data.registry.ModelRecord.__table__, data.registry.ModelVersion.__table__,
                      data.analysis_cache.AnalysisResult.__table__):
            table.to_metadata(declared)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), declared)
        ours = [d for d in diff if _tables_in(d) & set(TABLES)]
        assert ours == [], ours
        command.downgrade(cfg, "0001")
        assert not set(TABLES) & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _tables_in(diff) -> set[str]:
    names = set()
    for item in diff if isinstance(diff, list) else [diff]:
        for part in item[1:]:
            if isinstance(part, str):
                names.add(part)
            elif getattr(part, "table", None) is not None:
                names.add(part.table.name)
            elif getattr(part, "name", None):
                names.add(part.name)
    return names
