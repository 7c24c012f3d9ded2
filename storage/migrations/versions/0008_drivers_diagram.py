"""Driver diagram: drivers of racial inequity, change ideas, their history, and a cycle's change idea

Revision ID: 0008_drivers
Revises: 0007_registers
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008_drivers"
down_revision: str | None = "0007_registers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "driver",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("where", sa.JSON(), nullable=False),
        sa.Column("influence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("who_can", sa.Text(), server_default="", nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("retired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["driver.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("driver", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_driver_project_id"), ["project_id"], unique=False)

    op.create_table(
        "change_idea",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("driver_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("retired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["driver_id"], ["driver.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("change_idea", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_idea_driver_id"), ["driver_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_change_idea_project_id"), ["project_id"], unique=False)

    op.create_table(
        "driver_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("item", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("old", sa.JSON(), nullable=False),
        sa.Column("new", sa.JSON(), nullable=False),
        sa.Column("changed_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("driver_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_driver_history_project_id"), ["project_id"], unique=False)

    with op.batch_alter_table("pdsa_cycle", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_idea_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_pdsa_cycle_change_idea_id"), ["change_idea_id"], unique=False)
        batch_op.create_foreign_key("fk_pdsa_cycle_change_idea_id", "change_idea", ["change_idea_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("pdsa_cycle", schema=None) as batch_op:
        batch_op.drop_constraint("fk_pdsa_cycle_change_idea_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_pdsa_cycle_change_idea_id"))
        batch_op.drop_column("change_idea_id")
    op.drop_table("driver_history")
    op.drop_table("change_idea")
    op.drop_table("driver")
