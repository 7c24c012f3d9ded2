"""The schema is owned by alembic: migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import current_revision, downgrade, upgrade


def _is_slack_table(difference: tuple[object, ...]) -> bool:
    item = difference[1]
    table = getattr(item, "table", item)
    return str(getattr(table, "name", "")).startswith("slack_")


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        # slack-sdk owns the OAuth tables (created by the same migration from its own definitions).
        differences = [d for d in compare_metadata(context, SQLModel.metadata) if not _is_slack_table(d)]
    assert differences == []


def test_upgrade_is_idempotent_and_downgrade_removes_everything(engine: Engine) -> None:
    head = current_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == head
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "slack_installations" in inspect(engine).get_table_names()
