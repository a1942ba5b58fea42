"""SQLAlchemy 2 typed models: the one schema shared by SQLite and PostgreSQL.

Every table here is created by an Alembic migration in ``storage/migrations``;
``Base.metadata`` is only used by Alembic's autogenerate and by the tests that
compare the migrated schema with the models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Named constraints: Alembic's batch mode on SQLite needs them to alter tables.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT ids on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both databases.

    SQLite has no time zone type and hands back naive values; storing UTC and
    re-attaching the zone on the way out keeps every datetime in the program aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# The desk's own time: deadlines, dates shown to residents and the year in
# ticket numbers. Storage keeps UTC.
DESK_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Department(Base):
    """A department that handles tickets; synced from the TOML config at start."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    short_name: Mapped[str] = mapped_column(String(30))
    chat_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    thread_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    is_supervision: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Staff(Base):
    """A staff member, keyed on the numeric Telegram user id, never a username."""

    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("telegram_user_id", "department_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    role: Mapped[str] = mapped_column(String(20))  # clerk | supervisor | admin
    name: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # "config" rows follow the TOML file; "admin" rows were added from the admin room.
    source: Mapped[str] = mapped_column(String(10), default="config")


class Citizen(Base):
    """A resident; identified only through the contacts they wrote from."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Contact(Base):
    """One channel address of a citizen (a phone number, a Telegram chat id)."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(100))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Ticket(Base):
    """A complaint and its place in the workflow."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_department", "status", "department_id"),
        # A sender's recent tickets: the follow-up window and the new-ticket limit.
        Index("ix_tickets_contact_created", "contact_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Issued from the database id (see storage.numbers); NULL only inside the
    # inserting transaction, between the INSERT and the UPDATE that sets it.
    number: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(60), nullable=True)
    confidence: Mapped[float | None] = mapped_column(nullable=True)
    evidence: Mapped[list[str]] = mapped_column(JSON, default=list)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), nullable=True)
    co_department_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # Every department a conduct complaint names; none of them may receive it.
    accused_department_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), index=True)
    owner_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    priority: Mapped[str] = mapped_column(String(10), default="normal")  # normal | urgent
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    result_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    rating: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Where the complaint is, as an Open311 client gave it (a street address,
    # WGS-84 coordinates, or both); the other channels leave these empty.
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    latitude: Mapped[float | None] = mapped_column(nullable=True)
    longitude: Mapped[float | None] = mapped_column(nullable=True)
    # The Open311 client (ApiKey row) that filed the ticket. Not a foreign key:
    # SQLite cannot add one to an existing table without rebuilding it.
    api_key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TicketFollower(Base):
    """Another resident whose complaint was merged into this ticket; they get its updates."""

    __tablename__ = "ticket_followers"
    __table_args__ = (UniqueConstraint("ticket_id", "contact_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboundMessage(Base):
    """Every message a channel accepted, stored before it is acknowledged.

    ``UNIQUE(channel, external_id)`` is the dedupe key: a provider's retry of the
    same message finds this row and gets the reply stored with it.
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(120))
    sender: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text, default="")
    raw_payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True)
    reply_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    # True when the reply went back in the provider's HTTP response (TwiML),
    # False when the outbox sent it: a provider's retry of the message gets
    # the reply again only in the first case, never a second outbound message.
    reply_inline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketEvent(Base):
    """Append-only audit trail: who did what to which ticket, and when."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id"), nullable=True, index=True
    )
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabelledExample(Base):
    """A complaint text with a category a person confirmed or corrected.

    Written when staff return or transfer a ticket with a corrected category
    (a routing correction) and when a department resolves a ticket (its
    category stood); ``complaint-desk train --from-history`` learns from them.
    """

    __tablename__ = "labelled_examples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id"), nullable=True, index=True
    )
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(60))
    source: Mapped[str] = mapped_column(String(20))  # correction | resolved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(Base):
    """A message waiting to be sent, written in the transaction that caused it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        # Per-recipient ordering check in OutboxRepository.claim_due.
        Index("ix_outbox_messages_recipient", "channel", "recipient", "status"),
        # Delivery-status callbacks find their row by the provider's id.
        Index("ix_outbox_messages_provider_message_id", "provider_message_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(100))
    thread_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    body: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[list[dict[str, str]]] | None] = mapped_column(JSON, nullable=True)
    purpose: Mapped[str] = mapped_column(String(30), default="update")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True)
    # pending -> sending (claimed, leased) -> sent | pending (retry) | dead
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What the provider last reported about delivery (Twilio status callbacks:
    # queued < sent < delivered | undelivered | failed); only ever moves forward.
    delivery_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    delivery_error_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    delivery_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What the row sends: "text" (the body), "edit" (the body and buttons
    # replace the message row ``edit_of_id`` sent), or an attachment: "photo",
    # "document", "location", whose file id or coordinates are in ``payload``.
    kind: Mapped[str] = mapped_column(String(12), default="text", server_default="text")
    # Kind-specific data: an attachment's file id or coordinates; a ticket
    # card's department (purpose "card"), so its edits know whose card it is.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The row whose message an "edit" row changes. Not a foreign key: SQLite
    # cannot add one to an existing table without rebuilding it.
    edit_of_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TicketAttachment(Base):
    """A photo, document or location a resident sent with or after a complaint.

    Telegram files are kept as the Bot API's ``file_id`` (the file stays on
    Telegram's servers and is re-sent by id, never downloaded); a location
    as its coordinates.
    """

    __tablename__ = "ticket_attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(12))  # photo | document | location
    file_ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    file_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    latitude: Mapped[float | None] = mapped_column(nullable=True)
    longitude: Mapped[float | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """An Open311 client's API key (``complaint-desk apikey create``); only its hash is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # The key's first characters, shown in listings so an operator can tell keys
    # apart; far too short to guess the rest from.
    key_prefix: Mapped[str] = mapped_column(String(12))
    # Hex SHA-256 of the whole key. A fast unsalted hash is right here, unlike
    # for passwords: a key is 32 random bytes, so there is no dictionary to try
    # and no brute force that a slow hash would slow down; and it must be fast
    # and deterministic because every request looks its key up by this hash.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
