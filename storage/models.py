"""All SQLModel table classes. Every row carries its Slack workspace (team_id, and enterprise_id where present)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint, text
from sqlalchemy import false as sa_false
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Project(SQLModel, table=True):
    """An improvement project; it belongs to one channel of one workspace."""

    __tablename__ = "project"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", name="uq_project_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(index=True, max_length=32)
    enterprise_id: str | None = Field(default=None, max_length=32)
    channel_id: str = Field(max_length=32)
    name: str = Field(max_length=200)
    aim: str = Field(sa_column=Column(Text, nullable=False))
    focus_groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reference_group: str = Field(default="A", max_length=16)
    baseline: str = Field(default="", max_length=500)
    target: str = Field(default="", max_length=500)
    target_date: date | None = None
    target_gap: float | None = (
        None  # absolute gap the team wants to be able to detect (fraction), for power statements
    )
    racism_context: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    suppression_threshold: int = 8  # counts from 1 to threshold-1 are never posted
    # An anonymous answer is shown only once at least this many people could have given it (raise-only).
    anonymity_threshold: int = Field(default=3, sa_column_kwargs={"server_default": "3"})
    # Days free-text answers and PDSA reflections are kept; None: for the project's life.
    retention_days: int | None = None
    # What the project is about, in plain words for service-user partners (used in every partner DM).
    partner_description: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    timezone: str = Field(default="Europe/London", max_length=64)
    region: str = Field(default="ENG", max_length=8)  # UK bank-holiday calendar
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    card_ts: str | None = Field(default=None, max_length=32)  # the project card message in the channel


class ProjectMember(SQLModel, table=True):
    """A lead, team member or service-user partner of a project."""

    __tablename__ = "project_member"
    __table_args__ = (UniqueConstraint("project_id", "user_id", "role", name="uq_member_role"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    user_id: str = Field(max_length=32)
    role: str = Field(max_length=16)  # lead | partner | member
    consent: str = Field(default="pending", max_length=16)  # partners: pending | given | declined
    paused: bool = False
    stopped: bool = False
    share_in_channel: bool = False  # partners: their answers may reach the channel
    added_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class ProjectHistory(SQLModel, table=True):
    """Earlier values of a project's fields, kept when a lead edits them (nothing a user entered is lost)."""

    __tablename__ = "project_history"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    changed_by: str = Field(max_length=32)
    changed_at: datetime = Field(default_factory=utcnow)
    previous: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Measure(SQLModel, table=True):
    """An outcome, process or balancing measure, disaggregated by ethnic group."""

    __tablename__ = "measure"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_measure_name"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    name: str = Field(max_length=120)
    measure_type: str = Field(max_length=16)  # outcome | process | balancing
    kind: str = Field(max_length=16)  # proportion | rate_per_1000 | count | value
    numerator_definition: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    denominator_definition: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    direction: str = Field(default="lower", max_length=8)  # higher | lower | neither
    reference_group: str = Field(default="A", max_length=16)  # a code, "HL:<group>", "BEST" or "OTHERS"
    period: str = Field(default="month", max_length=8)  # day | week | month | quarter | year
    # How quarters and years are named and grouped: "financial" (NHS, April to March) or "calendar".
    quarters: str = Field(
        default="financial", sa_column=Column(String(9), nullable=False, server_default="financial")
    )
    target: float | None = None
    spc_method: str | None = Field(default=None, max_length=8)  # None: p for proportions, mdc for values
    rebase_dates: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    archived: bool = False
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class DataBatch(SQLModel, table=True):
    """One act of entering data (a modal, an import, a CLI import); the unit of undo."""

    __tablename__ = "data_batch"
    __table_args__ = (
        Index(
            "uq_batch_file",
            "team_id",
            "file_key",
            unique=True,
            sqlite_where=text("file_key IS NOT NULL AND undone_at IS NULL"),
            postgresql_where=text("file_key IS NOT NULL AND undone_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    measure_id: int = Field(foreign_key="measure.id", index=True)
    team_id: str = Field(max_length=32)
    source: str = Field(max_length=16)  # log | import | cli
    filename: str | None = Field(default=None, max_length=255)
    user_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    undone_at: datetime | None = None
    undone_by: str | None = Field(default=None, max_length=32)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The Slack file an import came from, as "<file id>@<version>": a file is imported once per version (replays
    # and retries change nothing). Only one batch that is not undone may hold a key.
    file_key: str | None = Field(default=None, max_length=120)


class DataPoint(SQLModel, table=True):
    """The current aggregate for one measure, period and ethnic group (never a patient-level row)."""

    __tablename__ = "data_point"
    __table_args__ = (UniqueConstraint("measure_id", "period_start", "group_code", name="uq_point"),)

    id: int | None = Field(default=None, primary_key=True)
    measure_id: int = Field(foreign_key="measure.id", index=True)
    team_id: str = Field(max_length=32)
    period_start: date
    group_code: str = Field(max_length=16)
    numerator: int | None = None
    denominator: int | None = None
    value: float | None = None
    batch_id: int = Field(foreign_key="data_batch.id")
    updated_at: datetime = Field(default_factory=utcnow)


class DataRevision(SQLModel, table=True):
    """A value as it was before a batch replaced it (or None when the batch created it): the history."""

    __tablename__ = "data_revision"

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="data_batch.id", index=True)
    measure_id: int = Field(foreign_key="measure.id", index=True)
    team_id: str = Field(max_length=32)
    period_start: date
    group_code: str = Field(max_length=16)
    existed_before: bool
    old_numerator: int | None = None
    old_denominator: int | None = None
    old_value: float | None = None
    old_batch_id: int | None = None
    new_numerator: int | None = None
    new_denominator: int | None = None
    new_value: float | None = None
    created_at: datetime = Field(default_factory=utcnow)


class PdsaCycle(SQLModel, table=True):
    """A Plan-Do-Study-Act cycle; `series_id` groups a ramp of cycles testing one change idea."""

    __tablename__ = "pdsa_cycle"
    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_cycle_number"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    number: int
    series_id: int | None = None  # id of the first cycle of the ramp
    ramp_step: int = 1
    previous_cycle_id: int | None = None
    title: str = Field(max_length=200)
    change_idea: str = Field(sa_column=Column(Text, nullable=False))
    question: str = Field(sa_column=Column(Text, nullable=False))
    measure_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    balancing_measure_id: int | None = None
    predictions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    plan: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    start_date: date
    end_date: date
    involvement: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    involvement_pending: bool = False  # "not yet": the bot follows up
    status: str = Field(default="planned", max_length=16)  # planned | doing | studied | acted
    decision: str | None = Field(default=None, max_length=16)  # adopt | adapt | abandon
    # The change idea of the project's driver diagram this cycle tests (None: not linked yet).
    change_idea_id: int | None = Field(default=None, foreign_key="change_idea.id", index=True)
    channel_id: str = Field(max_length=32)
    card_ts: str | None = Field(default=None, max_length=32)
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class PdsaEntry(SQLModel, table=True):
    """Everything recorded on a cycle, in order: plan edits, Do notes, Study results, Act decisions."""

    __tablename__ = "pdsa_entry"

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(foreign_key="pdsa_cycle.id", index=True)
    team_id: str = Field(max_length=32)
    kind: str = Field(max_length=16)  # plan | edit | do | study | act | warning
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    user_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class Schedule(SQLModel, table=True):
    """When a project's team prompts, partner prompts and leads' nudge go out."""

    __tablename__ = "schedule"
    __table_args__ = (UniqueConstraint("project_id", "kind", name="uq_schedule_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    enterprise_id: str | None = Field(default=None, max_length=32)
    kind: str = Field(max_length=16)  # team_prompt | partner_prompt | lead_nudge
    weekdays: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    hour: int
    minute: int = 0
    every_weeks: int = 1
    anchor: date | None = None
    timezone: str = Field(default="Europe/London", max_length=64)
    use_recipient_tz: bool = True  # DMs at each person's own Slack time zone
    skip_weekends: bool = True
    skip_bank_holidays: bool = True
    paused: bool = False
    disabled_reason: str | None = Field(default=None, max_length=64)  # e.g. app_uninstalled
    updated_by: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """The delivery ledger: one row per schedule, occurrence and recipient; the unique key makes a double post impossible."""

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("schedule_id", "occurrence", "recipient", name="uq_delivery"),)

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int = Field(foreign_key="schedule.id", index=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    occurrence: datetime  # UTC
    recipient: str = Field(max_length=32)  # channel id or user id
    kind: str = Field(max_length=16)
    prompt_id: str | None = Field(default=None, max_length=80)
    status: str = Field(default="claimed", max_length=16)  # claimed | sent | missed | failed | skipped
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    channel_id: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=200)
    reminded_at: datetime | None = None  # when the reminder round was decided (sent or not needed)
    # The recipient has answered (a person's own DM delivery only): no time, no order, no link to the answer.
    # Kept only until the reminder has been decided, then cleared.
    answered: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    crowd: int | None = None  # a channel prompt: the most people seen in the channel when it was answered
    # The leader term (LeaderTerm.term) the claim was made under; NULL for an unelected run (tests, the demo).
    # A claim whose term is still the current one belongs to the leader that holds the lock: nobody takes it over.
    fence: int | None = None


class PromptChoice(SQLModel, table=True):
    """A lead's pin or skip of a catalogue prompt for a project."""

    __tablename__ = "prompt_choice"
    __table_args__ = (UniqueConstraint("project_id", "prompt_id", name="uq_prompt_choice"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    prompt_id: str = Field(max_length=80)
    choice: str = Field(max_length=8)  # pin | skip
    used: bool = False  # a pin is consumed once delivered
    chosen_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class Answer(SQLModel, table=True):
    """An answer to a reflective prompt.

    An anonymous answer records what it answers (project, prompt, the round's date) and nothing that leads to a
    person: no user id, no delivery, no timestamp finer than the day. Who has answered a partner's question (for
    reminders) is a flag on that person's delivery row, which shares no key with this table.
    """

    __tablename__ = "answer"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    prompt_id: str = Field(max_length=80)
    stage: str = Field(max_length=32)
    audience: str = Field(default="team", max_length=16)  # team | partner: whose round it answers
    occurrence_date: date | None = None  # the round's date (in the project's time zone)
    cycle_id: int | None = Field(default=None, foreign_key="pdsa_cycle.id")  # named answers only
    user_id: str | None = Field(default=None, max_length=32)
    from_partner: bool = False
    anonymous: bool = False
    shared: bool = False
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)  # midnight UTC of the round's date when anonymous


class AuditLog(SQLModel, table=True):
    """Who did what and when (never what patients' numbers were)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(index=True, max_length=32)
    project_id: int | None = None  # kept after a project is deleted, so no foreign key
    user_id: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ProcessedEvent(SQLModel, table=True):
    """Events API deliveries already handled, so Slack's retries do not act twice (shared by all instances)."""

    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True, max_length=64)
    team_id: str | None = Field(default=None, max_length=32)
    received_at: datetime = Field(default_factory=utcnow)


class LeaderTerm(SQLModel, table=True):
    """The fencing token of scheduler leadership: one row, its term bumped by each instance that becomes leader.

    A claim carries the term it was made under and every post first checks the term is still its own, so a
    leader that lost the lock (and does not know it yet) can neither claim nor post (bot.services.delivery).
    """

    __tablename__ = "leader_term"

    id: int = Field(default=1, primary_key=True)
    term: int = 0
    holder: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(default_factory=utcnow)


class SchedulerState(SQLModel, table=True):
    """Per-schedule bookkeeping: the last occurrence the scheduler has dealt with (for catch-up after downtime)."""

    __tablename__ = "scheduler_state"

    schedule_id: int = Field(primary_key=True, foreign_key="schedule.id")
    last_checked: datetime


class ViewGrant(SQLModel, table=True):
    """A modal the bot opened for one person and one project: a submission must match it, and is applied once.

    Slack's view id is set by Slack (the signature covers it); the project and channel are what the bot had checked
    when it opened the form, so a submission's private_metadata is only a claim to compare with this row.
    """

    __tablename__ = "view_grant"

    team_id: str = Field(primary_key=True, max_length=32)
    view_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=32)
    project_id: int | None = (
        None  # None for /mfi new; no foreign key, like the audit log (deletion sweeps it)
    )
    channel_id: str | None = Field(default=None, max_length=32)
    callback_id: str = Field(default="", max_length=64)
    status: str = Field(default="open", max_length=16)  # open | applying | applied
    opened_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class Welcome(SQLModel, table=True):
    """Who has had the bot's welcome DM (sent once, the first time a person opens the app): a user id and when."""

    __tablename__ = "welcome"

    team_id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(primary_key=True, max_length=32)
    welcomed_at: datetime = Field(default_factory=utcnow)


# --- the framework's registers (issue 14): bias review, team reflection, who is missing ------------------------


class BiasReview(SQLModel, table=True):
    """One policy, process, pathway or service reviewed for racial bias, with the action the team will take."""

    __tablename__ = "bias_review"
    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_bias_review_number"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    number: int  # shown as "#3": per project, never reused
    reviewed_kind: str = Field(max_length=16)  # policy | process | pathway | service
    subject: str = Field(max_length=200)  # what was reviewed
    where_bias: str = Field(sa_column=Column(Text, nullable=False))  # where racial bias may be present
    evidence_kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    evidence: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    institutional: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    action: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    owner_id: str | None = Field(default=None, max_length=32)
    due_date: date | None = None
    status: str = Field(default="open", max_length=16)  # open | in_progress | done | dropped
    driver_id: int | None = None  # the driver diagram's driver (wired to its table when that lands)
    cycle_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)


class TeamReflection(SQLModel, table=True):
    """The team's reflection on its own make-up: one per project, edited over time (earlier versions kept)."""

    __tablename__ = "team_reflection"
    __table_args__ = (UniqueConstraint("project_id", name="uq_team_reflection_project"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    roles: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    composition: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    missing_voices: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    who_else: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # Who the team had (leads, members, partners) when it last reflected: a change brings the prompt back.
    members_seen: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class MissingEntry(SQLModel, table=True):
    """People the data do not show, and how the team will hear from them instead (never a count of them)."""

    __tablename__ = "missing_entry"
    __table_args__ = (
        UniqueConstraint("project_id", "number", name="uq_missing_number"),
        UniqueConstraint("project_id", "source_key", name="uq_missing_source_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    number: int
    source: str = Field(max_length=16)  # analysis | team | study
    # What an automatic entry is about ("<measure id>:<reason>:<group>"), so the analysis adds it once.
    source_key: str | None = Field(default=None, max_length=120)
    who: str = Field(sa_column=Column(Text, nullable=False))
    how_to_hear: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    what_happened: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    status: str = Field(default="open", max_length=16)  # open | in_progress | done | dropped
    cycle_id: int | None = None  # the PDSA cycle whose Study named them
    created_by: str | None = Field(default=None, max_length=32)  # None: the analysis
    created_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)


class RegisterHistory(SQLModel, table=True):
    """An entry of a register as it was before an edit (nothing a team recorded is lost)."""

    __tablename__ = "register_history"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    kind: str = Field(max_length=16)  # which register: bias | team | missing
    entry_id: int
    changed_by: str = Field(max_length=32)
    changed_at: datetime = Field(default_factory=utcnow)
    previous: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# --- the driver diagram (issue 14) --------------------------------------------------------------------------------


class Driver(SQLModel, table=True):
    """A driver of racial inequity on a project's driver diagram: primary (no parent) or secondary (under one)."""

    __tablename__ = "driver"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    parent_id: int | None = Field(default=None, foreign_key="driver.id")  # None: a primary driver
    text: str = Field(sa_column=Column(Text, nullable=False))
    # Where racism may be operating: any of policy, pathway, resources, communication, staff_practice, data, other.
    where: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    influence: str = Field(default="yes", max_length=16)  # yes | partly | not_directly
    who_can: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    position: int = 0
    retired_at: datetime | None = None
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ChangeIdea(SQLModel, table=True):
    """A change idea under a driver; PDSA cycles test it (PdsaCycle.change_idea_id)."""

    __tablename__ = "change_idea"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    driver_id: int = Field(foreign_key="driver.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    position: int = 0
    retired_at: datetime | None = None
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DriverHistory(SQLModel, table=True):
    """Append-only: who changed which driver or change idea, from what to what, and when."""

    __tablename__ = "driver_history"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    team_id: str = Field(max_length=32)
    item: str = Field(max_length=16)  # driver | idea | diagram
    item_id: int | None = None  # no foreign key: the history outlives nothing but the project
    action: str = Field(max_length=16)  # add | edit | move | retire
    old: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    new: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    changed_by: str = Field(max_length=32)
    changed_at: datetime = Field(default_factory=utcnow)
    # A submission's key (Slack view id): a replayed form finds its own row and changes nothing again.
    request_key: str | None = Field(default=None, max_length=80)
