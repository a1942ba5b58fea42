"""Plain data that crosses the channel/handler boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ActorKind = Literal["system", "citizen", "staff"]


@dataclass(frozen=True, slots=True)
class Attachment:
    """A photo, document or location a resident sent (a Telegram file id or coordinates)."""

    kind: str  # photo | document | location
    file_ref: str | None = None
    file_name: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class Place:
    """Where the problem is, as the sender gave it: coordinates, an address, or both."""

    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message a channel accepted, in channel-neutral form.

    ``external_id`` is the provider's id (Twilio MessageSid, Telegram
    update_id + chat); ``(channel, external_id)`` is the dedupe key.
    ``reply_inline`` is set by channels that answer in the HTTP response
    (TwiML): the resident's card is then returned, not queued in the outbox.
    """

    channel: str
    external_id: str
    sender: str
    text: str
    raw: dict[str, Any] = field(default_factory=dict)
    reply_inline: bool = False
    # Photos or other attachments that came with it (the text may be empty).
    media_count: int = 0
    # Those the desk can keep and pass on to the department (Telegram's,
    # and links to media an Open311 client gives).
    attachments: tuple[Attachment, ...] = ()
    # A category the sender chose (an Open311 service code): no classifier.
    category: str | None = None
    place: Place | None = None
    # False where every message is a request of its own (Open311): never
    # added to the sender's recent ticket as a follow-up.
    joins_recent: bool = True
    # The Open311 client (api_keys.id) that filed it.
    api_key_id: int | None = None
    # A keyword the provider acted on and answered itself (Twilio's STOP,
    # START, HELP, or its OptOutType for a custom word): the desk applies it
    # and sends nothing of its own.
    provider_keyword: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: the system, a resident (by contact) or a staff member."""

    kind: ActorKind
    label: str
    staff_id: int | None = None
    department_id: int | None = None
    role: str | None = None
    citizen_id: int | None = None
    # Staff of the supervision office and admins act for the centre itself.
    centre: bool = False

    @property
    def is_centre(self) -> bool:
        """True for whoever may accept, route, reopen and urge any ticket."""
        return self.kind == "system" or self.centre


SYSTEM = Actor(kind="system", label="system")


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What registration produced: the reply for the resident and the ticket, if any."""

    reply: str
    ticket_number: str | None
    duplicate: bool
