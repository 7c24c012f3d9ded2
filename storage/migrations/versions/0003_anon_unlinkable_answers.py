"""Anonymous means anonymous: answers keep no link to a person; the anonymity crowd, retention and partner wording

- answer: drop delivery_id (a delivery names its recipient); add audience and occurrence_date (the round's date);
  anonymous answers lose cycle_id and their timestamp becomes midnight UTC of the round's date.
- answer_receipt (delivery and user id, in answer order) is replaced by delivery.answered, a flag with no time
  and no order, kept only until the reminder is decided.
- delivery.crowd: how many people were in the channel when its prompt was answered (a number, never who).
- project: anonymity_threshold (default 3, raise-only), retention_days (None: the project's life),
  partner_description (what the project is about, in plain words for partners).

Revision ID: 0003_anon
Revises: 0002_import
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_anon"
down_revision: str | None = "0002_import"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KIND_AUDIENCE = {"partner_prompt": "partner", "team_prompt": "team"}


def _as_date(value: object) -> date | None:
    """A stored timestamp's UTC date (SQLite hands back strings or naive datetimes)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.date()


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN on both databases: a batch rebuild of a table other tables refer to would
    # have SQLite drop it, which its foreign keys refuse once there is data.
    op.add_column(
        "project", sa.Column("anonymity_threshold", sa.Integer(), nullable=False, server_default="3")
    )
    op.add_column("project", sa.Column("retention_days", sa.Integer(), nullable=True))
    op.add_column("project", sa.Column("partner_description", sa.Text(), nullable=False, server_default=""))
    op.add_column("delivery", sa.Column("answered", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("delivery", sa.Column("crowd", sa.Integer(), nullable=True))
    op.add_column(
        "answer",
        sa.Column(
            "audience", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="team"
        ),
    )
    op.add_column("answer", sa.Column("occurrence_date", sa.Date(), nullable=True))

    bind = op.get_bind()
    answer = sa.table(
        "answer",
        sa.column("id", sa.Integer()),
        sa.column("delivery_id", sa.Integer()),
        sa.column("anonymous", sa.Boolean()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("audience", sa.String()),
        sa.column("occurrence_date", sa.Date()),
        sa.column("cycle_id", sa.Integer()),
        sa.column("from_partner", sa.Boolean()),
    )
    delivery = sa.table(
        "delivery",
        sa.column("id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("occurrence", sa.DateTime(timezone=True)),
        sa.column("recipient", sa.String()),
        sa.column("reminded_at", sa.DateTime(timezone=True)),
        sa.column("answered", sa.Boolean()),
    )
    receipt = sa.table(
        "answer_receipt", sa.column("delivery_id", sa.Integer()), sa.column("user_id", sa.String())
    )

    # What the answers answered, read from the ledger before the link goes.
    kinds = {
        row.id: (row.kind, row.occurrence)
        for row in bind.execute(sa.select(delivery.c.id, delivery.c.kind, delivery.c.occurrence))
    }
    for row in bind.execute(
        sa.select(
            answer.c.id, answer.c.delivery_id, answer.c.anonymous, answer.c.created_at, answer.c.from_partner
        )
    ).all():
        kind, occurrence = kinds.get(row.delivery_id, (None, None))
        audience = _KIND_AUDIENCE.get(kind or "", "partner" if row.from_partner else "team")
        day = _as_date(occurrence) or _as_date(row.created_at)
        values: dict[str, object] = {"audience": audience, "occurrence_date": day}
        if row.anonymous:
            values["cycle_id"] = None
            values["from_partner"] = audience == "partner"
            if day is not None:
                values["created_at"] = datetime.combine(day, time(0), tzinfo=UTC)
        bind.execute(sa.update(answer).where(answer.c.id == row.id).values(**values))

    # Reminders still due keep working: a partner's own delivery is flagged; everything else is forgotten.
    for row in bind.execute(sa.select(receipt.c.delivery_id, receipt.c.user_id)).all():
        bind.execute(
            sa.update(delivery)
            .where(
                delivery.c.id == row.delivery_id,
                delivery.c.recipient == row.user_id,
                delivery.c.kind == "partner_prompt",
                delivery.c.reminded_at.is_(None),
            )
            .values(answered=True)
        )

    with op.batch_alter_table("answer_receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_answer_receipt_delivery_id"))
    op.drop_table("answer_receipt")
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.drop_column("delivery_id")
        batch_op.alter_column("audience", server_default=None)


def downgrade() -> None:
    # The links removed by upgrade() are gone for good: delivery_id comes back empty and receipts start afresh.
    op.create_table(
        "answer_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id", "user_id", name="uq_receipt"),
    )
    with op.batch_alter_table("answer_receipt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_answer_receipt_delivery_id"), ["delivery_id"], unique=False)
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("answer_delivery_id_fkey", "delivery", ["delivery_id"], ["id"])
        batch_op.drop_column("occurrence_date")
        batch_op.drop_column("audience")
    # ALTER TABLE DROP COLUMN (SQLite 3.35 and later, PostgreSQL): no rebuild of tables others refer to.
    for table, column in (
        ("delivery", "crowd"),
        ("delivery", "answered"),
        ("project", "partner_description"),
        ("project", "retention_days"),
        ("project", "anonymity_threshold"),
    ):
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
