"""Measures name and group quarters and years by the NHS financial year (April to March) or the calendar year

Revision ID: 0004_periods
Revises: 0003_anon
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_periods"
down_revision: str | None = "0003_anon"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("quarters", sa.String(length=9), nullable=False, server_default="financial")
        )


def downgrade() -> None:
    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.drop_column("quarters")
