"""Imports remember the Slack file and version they came from, so a file is imported once per version

Revision ID: 0002_import
Revises: 0001
Create Date: 2026-12-01 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_import"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = "file_key IS NOT NULL AND undone_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("data_batch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("file_key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True)
        )
    op.create_index(
        "uq_batch_file",
        "data_batch",
        ["team_id", "file_key"],
        unique=True,
        sqlite_where=sa.text(_ACTIVE),
        postgresql_where=sa.text(_ACTIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_batch_file", table_name="data_batch")
    with op.batch_alter_table("data_batch", schema=None) as batch_op:
        batch_op.drop_column("file_key")
