"""Open311 GeoReport v2, channel-neutral: the services, filing a request, looking requests up.

A service is a configured category (its code is the service code; ``group``
is its first-level category). A request is a ticket: filed through the same
intake as every channel (stored first, deduplicated on the client's
``Idempotency-Key``, routed, answered with the service card), looked up by
its ticket number (``service_request_id``).

Privacy, by construction of the views below:

- no request ever carries a contact: not the phone, e-mail or name a client
  sent, nor the address a resident wrote from on another channel;
- ``description`` is shown only for requests filed through Open311 (their
  text was written for this API); a complaint texted or sent by Telegram was
  not written to be published, so its text stays with the desk;
- a conduct complaint (作风效能) is listed without its text and without the
  department handling it, except to the client that filed it.

Errors are ``Open311Error``: the HTTP status and the precise description the
standard's error shape carries.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from handlers.api_keys import ApiClient
from handlers.context import Desk
from handlers.desk_config import CategoryConfig, DeskConfig
from handlers.intake import handle_register
from handlers.messages import Attachment, IncomingMessage, Place
from handlers.queries import TicketView, event_views
from handlers.resident import public_note
from handlers.texts import STATUS_LABELS, query_hint
from handlers.workflow import Status
from storage.models import Ticket, TicketAttachment, TicketEvent

CHANNEL: Final = "open311"
# The standard's default window, and its limit on start_date..end_date.
DEFAULT_WINDOW: Final = timedelta(days=90)
MAX_WINDOW: Final = timedelta(days=90)
MAX_RESULTS: Final = 200
MAX_IDS: Final = 100
MAX_FIELD: Final = {"address_string": 300, "media_url": 300, "email": 80, "phone": 20}
MAX_NAME: Final = 50
CLOSED_STATUSES: Final = frozenset({Status.RESOLVED, Status.CLOSED, Status.REJECTED})
_PHONE: Final = re.compile(r"^\+?[0-9][0-9 -]{4,18}[0-9]$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MEDIA: Final = re.compile(r"^https?://[^\s]+$")
_ATTRIBUTE: Final = re.compile(r"^attribute\[([^\[\]]{1,40})\]$")


class Open311Error(Exception):
    """A request the API refuses: ``status`` is the HTTP status, ``description`` says why."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# ------------------------------------------------------------------- services


@dataclass(frozen=True, slots=True)
class ServiceView:
    """One entry of GET services."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


@dataclass(frozen=True, slots=True)
class AttributeView:
    """One attribute of a service definition."""

    code: str
    datatype: str
    required: bool
    datatype_description: str
    order: int
    description: str
    values: tuple[tuple[str, str], ...] = ()
    variable: bool = True


def services(config: DeskConfig) -> list[ServiceView]:
    """Every configured category as a realtime service."""
    attributes = bool(service_attributes(config))
    return [_service(config, category, attributes) for category in config.categories]


def service_definition(config: DeskConfig, code: str) -> list[AttributeView]:
    """The attributes of one service; ``Open311Error`` 404 for an unknown code."""
    if code not in config.category_by_code:
        raise Open311Error(404, f"service_code '{code}' is not a service of this desk")
    return service_attributes(config)


def service_attributes(config: DeskConfig) -> list[AttributeView]:
    """What a client may add to any request: the district, where the desk knows districts."""
    if not config.districts:
        return []
    return [
        AttributeView(
            code="district",
            datatype="singlevaluelist",
            required=False,
            datatype_description="所在区县（选填）",
            order=1,
            description="问题发生的区县",
            values=tuple((d.name, d.name) for d in config.districts),
        )
    ]


def _service(config: DeskConfig, category: CategoryConfig, attributes: bool) -> ServiceView:
    department = next((d for d in config.departments if d.code == category.department), None)
    days = config.deadline_days(category.code, urgent=False)
    handled = f"由{department.name}办理，" if department else ""
    words = sorted(category.keywords, key=lambda w: -category.keywords[w])[:8]
    return ServiceView(
        service_code=category.code,
        service_name=category.code,
        description=f"{category.code}类诉求，{handled}{days}个工作日内办结。",
        metadata=attributes,
        type="realtime",
        keywords=",".join(words),
        group=_first_level(config, category),
    )


def _first_level(config: DeskConfig, category: CategoryConfig) -> str:
    seen = {category.code}
    while category.parent is not None and category.parent not in seen:
        parent = config.category_by_code.get(category.parent)
        if parent is None:
            break
        seen.add(parent.code)
        category = parent
    return category.code


# ------------------------------------------------------------------ filing


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A POST requests form, validated."""

    description: str
    service_code: str | None = None
    place: Place | None = None
    phone: str | None = None
    email: str | None = None
    name: str = ""
    media_url: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FiledRequest:
    """What POST requests answers."""

    service_request_id: str
    service_notice: str
    # True when the Idempotency-Key was seen before: the same request, not a new one.
    replayed: bool


def parse_new_request(config: DeskConfig, form: Mapping[str, str]) -> NewRequest:
    """The form fields of POST requests, checked; ``Open311Error`` 400 names what is wrong."""
    code = _text(form, "service_code")
    if code is not None and code not in config.category_by_code:
        raise Open311Error(400, f"service_code '{code}' is not a service of this desk")
    description = (form.get("description") or "").strip()
    if not description:
        raise Open311Error(400, "description is required: say what the problem is")
    limit = config.desk.max_text_chars
    if len(description) > limit:
        raise Open311Error(
            400, f"description is {len(description)} characters; at most {limit} are accepted"
        )
    place = _place(form)
    if place is None:
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    phone, email = _text(form, "phone"), _text(form, "email")
    if phone is not None and not _PHONE.match(phone):
        raise Open311Error(400, f"phone '{phone}' is not a telephone number")
    if email is not None and not _EMAIL.match(email):
        raise Open311Error(400, "email is not an e-mail address")
    media_url = _text(form, "media_url")
    if media_url is not None and not _MEDIA.match(media_url):
        raise Open311Error(400, "media_url must be an http or https URL")
    attributes = _attributes(config, form)
    name = " ".join(p for p in (_text(form, "last_name"), _text(form, "first_name")) if p)
    return NewRequest(
        description=description,
        service_code=code,
        place=place,
        phone=phone,
        email=email,
        name=name[:MAX_NAME],
        media_url=media_url,
        attributes=attributes,
    )


def _text(form: Mapping[str, str], name: str) -> str | None:
    value = (form.get(name) or "").strip()
    if not value:
        return None
    limit = MAX_FIELD.get(name, MAX_NAME)
    if len(value) > limit:
        raise Open311Error(400, f"{name} is {len(value)} characters; at most {limit} are accepted")
    return value


def _place(form: Mapping[str, str]) -> Place | None:
    lat, long = _text(form, "lat"), _text(form, "long")
    address = _text(form, "address_string")
    if (lat is None) != (long is None):
        raise Open311Error(400, "lat and long go together: give both or neither")
    latitude = longitude = None
    if lat is not None and long is not None:
        latitude, longitude = _coordinate(lat, "lat", 90), _coordinate(long, "long", 180)
    if latitude is None and address is None:
        return None
    return Place(latitude=latitude, longitude=longitude, address=address)


def _coordinate(value: str, name: str, bound: int) -> float:
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name} '{value}' is not a number") from None
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise Open311Error(400, f"{name} {value} is outside -{bound}..{bound}")
    return number


def _attributes(config: DeskConfig, form: Mapping[str, str]) -> dict[str, str]:
    known = {a.code: a for a in service_attributes(config)}
    chosen: dict[str, str] = {}
    for key, value in form.items():
        found = _ATTRIBUTE.match(key)
        if found is None:
            continue
        code = found.group(1)
        attribute = known.get(code)
        if attribute is None:
            raise Open311Error(400, f"attribute[{code}] is not an attribute of this service")
        if attribute.values and value not in {key for key, _ in attribute.values}:
            raise Open311Error(400, f"attribute[{code}] '{value}' is not one of its values")
        chosen[code] = value
    return chosen


async def file_request(
    desk: Desk, client: ApiClient, request: NewRequest, idempotency_key: str | None
) -> FiledRequest:
    """Register the request as a ticket, once per ``idempotency_key``."""
    # The dedupe key: the client's own, or a fresh one (every POST is a request).
    external = (
        f"{client.id}:key:{idempotency_key}" if idempotency_key else f"{client.id}:{uuid.uuid4()}"
    )
    if idempotency_key:
        await _refuse_reused_key(desk, external, idempotency_key, request)
    # Whom the desk would call back, never shown by this API (see the module docstring).
    who = request.phone or request.email or f"anonymous:{uuid.uuid4().hex[:16]}"
    district = request.attributes.get("district")
    text = (
        request.description
        if district is None or district in request.description
        else (f"{district}：{request.description}")
    )
    result = await handle_register(
        desk,
        IncomingMessage(
            channel=CHANNEL,
            external_id=external[:120],
            sender=f"{client.id}:{who}",
            text=text,
            raw={
                "description": request.description,
                "service_code": request.service_code,
                "name": request.name,
                "phone": request.phone,
                "email": request.email,
                "attributes": request.attributes,
            },
            # The card goes back in the HTTP answer, not by the outbox.
            reply_inline=True,
            attachments=(
                (Attachment("link", file_ref=request.media_url),) if request.media_url else ()
            ),
            category=request.service_code,
            place=request.place,
            joins_recent=False,
            api_key_id=client.id,
        ),
    )
    number = result.ticket_number
    if number is None:  # pragma: no cover - parse_new_request refused it first
        raise Open311Error(400, result.reply)
    # "Reply 查询 <编号>" is for residents on SMS and Telegram; a client asks the API.
    notice = result.reply.replace(query_hint(number), "") + "可凭受理编号随时查询办理进度。"
    return FiledRequest(number, notice, result.duplicate)


async def _refuse_reused_key(
    desk: Desk, external_id: str, idempotency_key: str, request: NewRequest
) -> None:
    """422 when the key already filed a different request: a retry must repeat itself."""
    async with desk.database.reading() as uow:
        earlier = await uow.inbound.find(CHANNEL, external_id[:120])
    if earlier is None:
        return
    same = earlier.raw_payload.get("description") == request.description and (
        earlier.raw_payload.get("service_code") == request.service_code
    )
    if not same:
        raise Open311Error(
            422,
            f"Idempotency-Key '{idempotency_key}' was already used for a different request; "
            "send a new key with a new request",
        )


# ----------------------------------------------------------------- looking up


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """GET requests' query, checked."""

    numbers: tuple[str, ...] = ()
    service_code: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    closed: bool | None = None


@dataclass(frozen=True, slots=True)
class RequestView:
    """One request as the API shows it (no contact, ever)."""

    service_request_id: str
    status: str  # open | closed
    status_detail: str  # the desk's own status
    status_label: str
    status_notes: str | None
    service_name: str | None
    service_code: str | None
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str | None
    lat: float | None
    long: float | None
    media_url: str | None


def parse_filter(query: Mapping[str, str], now: datetime) -> RequestFilter:
    """GET requests' parameters; ``Open311Error`` 400 for bad ids, dates or status."""
    ids = tuple(i.strip() for i in (query.get("service_request_id") or "").split(",") if i.strip())
    if len(ids) > MAX_IDS:
        raise Open311Error(400, f"at most {MAX_IDS} service_request_id values at once")
    if any(not re.fullmatch(r"\d{9,10}", i) for i in ids):
        raise Open311Error(400, "service_request_id must be ticket numbers (9 or 10 digits)")
    status = (query.get("status") or "").strip()
    closed: bool | None = None
    if status:
        values = {s.strip() for s in status.split(",")}
        if not values <= {"open", "closed"}:
            raise Open311Error(400, f"status '{status}' is not open or closed")
        closed = None if values == {"open", "closed"} else values == {"closed"}
    since, until = _date(query, "start_date"), _date(query, "end_date")
    if ids:
        # Looked up by id: the date window does not apply unless asked for.
        return RequestFilter(ids, query.get("service_code") or None, since, until, closed)
    until = until or now
    since = since or until - DEFAULT_WINDOW
    if since > until:
        raise Open311Error(400, "start_date is after end_date")
    if until - since > MAX_WINDOW:
        raise Open311Error(400, "start_date and end_date may be at most 90 days apart")
    return RequestFilter((), query.get("service_code") or None, since, until, closed)


def _date(query: Mapping[str, str], name: str) -> datetime | None:
    value = (query.get(name) or "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(
            400, f"{name} '{value}' is not an ISO 8601 date-time (e.g. 2026-11-29T08:00:00+08:00)"
        ) from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name} '{value}' needs a time zone (e.g. +08:00 or Z)")
    return moment


async def find_requests(desk: Desk, client: ApiClient, wanted: RequestFilter) -> list[RequestView]:
    """The requests matching the filter, newest first, at most MAX_RESULTS."""
    statuses: set[str] = set()
    if wanted.closed is not None:
        closed = {s.value for s in CLOSED_STATUSES}
        statuses = closed if wanted.closed else {s.value for s in Status} - closed
    async with desk.database.reading() as uow:
        tickets = await uow.tickets.matching(
            numbers=wanted.numbers,
            category=wanted.service_code,
            since=wanted.since,
            until=wanted.until,
            statuses=statuses,
            limit=MAX_RESULTS,
        )
        names = {d.id: d.name for d in await uow.directory.departments()}
        ids = [ticket.id for ticket in tickets]
        # Two queries for the whole page, not two per ticket.
        events = await uow.events.for_tickets(ids)
        attachments = await uow.attachments.of_tickets(ids)
    return [
        _view(desk, client, ticket, events[ticket.id], attachments[ticket.id], names)
        for ticket in tickets
    ]


async def request_by_id(desk: Desk, client: ApiClient, number: str) -> RequestView:
    """One request; ``Open311Error`` 404 when there is none with that number."""
    if not re.fullmatch(r"\d{9,10}", number):
        raise Open311Error(404, f"no service request '{number}'")
    found = await find_requests(desk, client, RequestFilter(numbers=(number,)))
    if not found:
        raise Open311Error(404, f"no service request '{number}'")
    return found[0]


def _view(
    desk: Desk,
    client: ApiClient,
    ticket: Ticket,
    events: Sequence[TicketEvent],
    attachments: Sequence[TicketAttachment],
    names: Mapping[int, str],
) -> RequestView:
    status = Status(ticket.status)
    own = ticket.api_key_id == client.id
    conduct = bool(ticket.accused_department_ids)
    hidden = conduct and not own
    department = names.get(ticket.department_id) if ticket.department_id else None
    label, note = public_note(TicketView(ticket, department, (), event_views(events)))
    links = [a.file_ref for a in attachments if a.kind == "link" and a.file_ref]
    category = desk.config.category_by_code.get(ticket.category or "")
    return RequestView(
        service_request_id=ticket.number or "",
        status="closed" if status in CLOSED_STATUSES else "open",
        status_detail=status.value,
        status_label=STATUS_LABELS.get(status.value, status.value),
        status_notes=f"{label}：{note}" if note and not hidden else None,
        service_name=ticket.category,
        service_code=category.code if category else None,
        description=ticket.text if ticket.channel == CHANNEL and not hidden else None,
        agency_responsible=None if hidden else department,
        service_notice=None,
        requested_datetime=ticket.created_at,
        updated_datetime=ticket.updated_at,
        expected_datetime=ticket.deadline_at,
        address=ticket.address,
        lat=ticket.latitude,
        long=ticket.longitude,
        media_url=links[0] if links else None,
    )
