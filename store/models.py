"""The tables. Timestamps are timezone-aware UTC everywhere, SQLite included."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite hands them back naive, so UTC is put back on load."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), date: Date(), dict[str, Any]: JSON()}


class SurveyRow(Base):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    keyword: Mapped[str] = mapped_column(String(20), index=True)
    opens: Mapped[date]
    closes: Mapped[date]
    definition: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(500))
    loaded_at: Mapped[datetime]


class ResidentRow(Base):
    """A person. Their conversation state is a JSON document the engine reads and writes whole."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    opted_out_at: Mapped[datetime | None]
    language: Mapped[str | None] = mapped_column(String(8))
    state: Mapped[dict[str, Any]]
    # when the sweeper must next look at this resident's survey in progress (reminder or expiry)
    session_due_at: Mapped[datetime | None] = mapped_column(index=True)


class AddressRow(Base):
    """One way to reach a resident: a phone number (E.164) or a Telegram chat."""

    __tablename__ = "addresses"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    invalid_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class InboundRow(Base):
    """Every provider message id accepted, so a redelivered webhook is a no-op."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("channel", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(String(64))
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


class ResponseRow(Base):
    """One resident's taking part in one survey; ``participant`` is the pseudonymous id in exports."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    participant: Mapped[str] = mapped_column(String(16), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # None while in progress


class AnswerRow(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("response_id", "question"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id"))
    question: Mapped[str] = mapped_column(String(32))
    value: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    answered_at: Mapped[datetime]


class OutboxRow(Base):
    """A message to send. Status only moves forward (see ``STATUS_RANK``)."""

    __tablename__ = "outbox"
    __table_args__ = (
        # the sender's claim: queued rows of one channel, replies before bulk, oldest first, without a sort
        Index("ix_outbox_claim", "status", "channel", "priority", "id"),
        UniqueConstraint("send_id", "resident_id"),  # a card reaches a resident at most once
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"))
    channel: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    buttons: Mapped[dict[str, Any] | None]
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer)  # 0: replies to residents, before 1: bulk
    status: Mapped[str] = mapped_column(String(16))
    status_rank: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    send_id: Mapped[int | None] = mapped_column(ForeignKey("sends.id"))  # a You Said, We Did sending


class ReportRow(Base):
    """A frontline staff member's "word on the street": what they heard, where, and from how many."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    user_name: Mapped[str] = mapped_column(String(200))
    heard: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    place: Mapped[str | None] = mapped_column(String(200), index=True)
    how_many: Mapped[str | None] = mapped_column(String(16))
    quote: Mapped[str | None] = mapped_column(Text)
    follow_up: Mapped[bool]
    source: Mapped[str] = mapped_column(String(16))  # command, modal, shortcut
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)  # Slack's id for the request
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class ReportThemeRow(Base):
    """A theme on a report: suggested by the tagger (with the words that matched) or set by staff."""

    __tablename__ = "report_themes"
    __table_args__ = (UniqueConstraint("report_id", "theme"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    theme: Mapped[str] = mapped_column(String(40), index=True)
    matched: Mapped[str | None] = mapped_column(String(500))  # why it was suggested
    by_staff: Mapped[bool]  # chosen or kept by a person (a correction is kept as such)


class JobRunRow(Base):
    """Scheduled work done for a period (e.g. the digest for week 2026-W47): the scheduler is only a
    wake-up; this table is what makes a job run once per period, across restarts."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(40))
    ran_at: Mapped[datetime]


class CardRow(Base):
    """A You Said, We Did card: drafted, approved by a second person, then scheduled to send."""

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    definition: Mapped[dict[str, Any]]  # the card as written (flows.yswd.Card)
    state: Mapped[str] = mapped_column(String(16))  # draft, approved, scheduled, sending, sent, cancelled
    author: Mapped[str] = mapped_column(String(100))
    approver: Mapped[str | None] = mapped_column(String(100))
    purdah_exempt_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SendRow(Base):
    """One scheduled sending of a card. Its state lives here, not in the scheduler: a restart resumes it."""

    __tablename__ = "sends"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(16))  # scheduled, planned, cancelled
    recipients: Mapped[int | None]
    scheduled_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    planned_at: Mapped[datetime | None]


class AuditRow(Base):
    """Who did what to a card or send, and when: the trail scrutiny committees and DPOs ask for."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(60), index=True)
    details: Mapped[dict[str, Any] | None]


class PulseRow(Base):
    """A resident's answer to "Did this answer your concern?" after a You Said, We Did message."""

    __tablename__ = "pulses"
    __table_args__ = (UniqueConstraint("card_id", "resident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    answer: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime]
