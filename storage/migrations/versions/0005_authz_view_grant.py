"""View grants: the modals the bot opened, for whom and for which project (authorisation and once-only submissions)

Revision ID: 0005_authz
Revises: 0004_periods
Create Date: 2026-12-01 20:51:11.365311
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005_authz"
down_revision: str | None = "0004_periods"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "view_grant",
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("view_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("callback_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "view_id"),
    )
    with op.batch_alter_table("view_grant", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_view_grant_opened_at"), ["opened_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("view_grant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_view_grant_opened_at"))
    op.drop_table("view_grant")
