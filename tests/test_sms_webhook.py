"""The SMS webhooks end to end in-process: signatures, storage before the 2xx, replies, retries."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Iterable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers import ROUTED_TEXT
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.app import DESK, INTAKE, create_app
from bot.settings import Settings
from handlers import texts
from handlers.desk_config import DeskConfig
from storage.models import Contact, InboundMessage, OutboxMessage, Ticket
from storage.unit_of_work import Database

TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC = "https://desk.example.org"
RESIDENT = "+8613800138000"
_sids = itertools.count(1)


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


def sign(url: str, fields: Iterable[tuple[str, str]], token: str = TOKEN) -> str:
    """What Twilio puts in X-Twilio-Signature for a POST of ``fields`` to ``url``."""
    from multidict import MultiDict

    return RequestValidator(token).compute_signature(url, MultiDict(list(fields)))


def sms_fields(body: str, sid: str | None = None, sender: str = RESIDENT) -> list[tuple[str, str]]:
    return [
        ("MessageSid", sid or new_sid()),
        ("AccountSid", "AC" + "0" * 32),
        ("From", sender),
        ("To", "+8610690000"),
        ("Body", body),
        ("NumMedia", "0"),
    ]


async def make_client(
    database_url: str, desk_config: DeskConfig, **overrides: object
) -> TestClient:
    values: dict[str, object] = {
        "database_url": database_url,
        "database_auto_migrate": True,
        "outbox_dispatch": False,  # outbox rows stay where the test can count them
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": TOKEN,
        "twilio_from_number": "+8610690000",
        "public_base_url": PUBLIC,
        **overrides,
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    return TestClient(TestServer(create_app(settings, desk_config)))


@pytest.fixture
async def client(database_url: str, desk_config: DeskConfig) -> AsyncIterator[TestClient]:
    async with await make_client(database_url, desk_config) as test_client:
        yield test_client


async def post(
    client: TestClient,
    fields: list[tuple[str, str]],
    *,
    path: str = "/sms/inbound",
    signed_url: str | None = None,
    signature: str | None = None,
    token: str = TOKEN,
) -> tuple[int, str]:
    url = signed_url if signed_url is not None else PUBLIC + path
    headers = {"X-Twilio-Signature": signature or sign(url, fields, token)}
    if signature == "":
        headers = {}
    response = await client.post(path, data=fields, headers=headers)
    return response.status, await response.text()


def message_of(twiml: str) -> str | None:
    found = re.search(r"<Message>(.*)</Message>", twiml, re.S)
    return found.group(1) if found else None


def database_of(client: TestClient) -> Database:
    return client.server.app[DESK].database


async def counts(database: Database) -> tuple[int, int, int]:
    """(inbound messages, tickets, outbox rows)."""
    async with database.reading() as uow:
        session = uow.session
        inbound = (await session.execute(select(func.count(InboundMessage.id)))).scalar_one()
        tickets = (await session.execute(select(func.count(Ticket.id)))).scalar_one()
        outbox = (await session.execute(select(func.count(OutboxMessage.id)))).scalar_one()
    return int(inbound), int(tickets), int(outbox)


# ------------------------------------------------------------------ signatures


def test_twilio_published_test_vector() -> None:
    # From twilio-python's own tests: our validation is the library's.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    validator = RequestValidator("12345")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert validator.compute_signature(url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert validator.validate(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not validator.validate(url, {**params, "Digits": "1235"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


@pytest.mark.parametrize(
    "case",
    ["tampered body", "wrong path", "http not https", "missing", "other token", "garbage"],
)
async def test_badly_signed_webhooks_are_refused_and_store_nothing(
    client: TestClient, case: str
) -> None:
    fields = sms_fields(ROUTED_TEXT)
    kwargs: dict[str, str] = {}
    if case == "tampered body":
        kwargs["signature"] = sign(PUBLIC + "/sms/inbound", fields)
        fields = [(k, v + "!" if k == "Body" else v) for k, v in fields]
    elif case == "wrong path":
        kwargs["signed_url"] = PUBLIC + "/sms/status"
    elif case == "http not https":
        kwargs["signed_url"] = "http://desk.example.org/sms/inbound"
    elif case == "missing":
        kwargs["signature"] = ""
    elif case == "other token":
        kwargs["token"] = "someone-elses-token"
    else:
        kwargs["signature"] = "bm90IGEgc2lnbmF0dXJl"
    status, _ = await post(client, fields, **kwargs)
    assert status == 403
    assert await counts(database_of(client)) == (0, 0, 0)


@pytest.mark.parametrize(
    ("path", "signed_url"),
    [
        # The proxy terminates TLS: the desk sees http://127.0.0.1:port, Twilio signed https.
        ("/sms/inbound", PUBLIC + "/sms/inbound"),
        ("/sms/inbound", "https://desk.example.org:443/sms/inbound"),
        ("/sms/inbound?source=primary&x=1", PUBLIC + "/sms/inbound?source=primary&x=1"),
        ("/sms/fallback", PUBLIC + "/sms/fallback"),
    ],
)
async def test_correctly_signed_webhooks_are_accepted(
    client: TestClient, path: str, signed_url: str
) -> None:
    status, body = await post(client, sms_fields(ROUTED_TEXT), path=path, signed_url=signed_url)
    assert status == 200
    assert message_of(body) is not None
    assert (await counts(database_of(client)))[:2] == (1, 1)


async def test_repeated_form_keys_are_signed_and_accepted(client: TestClient) -> None:
    fields = [*sms_fields(ROUTED_TEXT), ("MediaUrl", "https://a.example/1"), ("MediaUrl", "x")]
    status, _ = await post(client, fields)
    assert status == 200
    # Dropping one of the repeated values breaks the signature.
    signature = sign(PUBLIC + "/sms/inbound", fields)
    status, _ = await post(client, fields[:-1], signature=signature)
    assert status == 403


async def test_without_an_auth_token_every_request_is_refused(
    database_url: str, desk_config: DeskConfig
) -> None:
    async with await make_client(
        database_url, desk_config, twilio_auth_token=None, twilio_account_sid=None
    ) as client:
        status, text = await post(client, sms_fields(ROUTED_TEXT))
        assert status == 403
        assert "TWILIO_AUTH_TOKEN" in text
        assert await counts(database_of(client)) == (0, 0, 0)


async def test_signed_request_without_message_sid_is_a_bad_request(client: TestClient) -> None:
    fields = [(k, v) for k, v in sms_fields(ROUTED_TEXT) if k != "MessageSid"]
    status, _ = await post(client, fields)
    assert status == 400
    assert await counts(database_of(client)) == (0, 0, 0)


# ------------------------------------------------------------------ replies


async def test_complaint_is_answered_with_the_service_card_in_the_response(
    client: TestClient,
) -> None:
    status, body = await post(client, sms_fields(ROUTED_TEXT))
    assert status == 200
    card = message_of(body)
    assert card is not None and "受理编号" in card and "住建局" in card
    assert len(card) <= 134  # two UCS-2 segments
    async with database_of(client).reading() as uow:
        rows = (await uow.session.execute(select(OutboxMessage))).scalars().all()
    # The department hears of it; the resident's card went in the response, not the outbox.
    assert [r.channel for r in rows if r.recipient == RESIDENT] == []
    assert any(r.purpose == "department_card" for r in rows)


async def test_under_a_backlog_the_answer_goes_by_the_outbox(
    database_url: str, desk_config: DeskConfig
) -> None:
    async with await make_client(database_url, desk_config, sms_inline_backlog=0) as client:
        status, body = await post(client, sms_fields(ROUTED_TEXT))
        assert status == 200
        assert message_of(body) is None
        await client.server.app[INTAKE].stop()  # the worker finishes what is queued
        async with database_of(client).reading() as uow:
            rows = (await uow.session.execute(select(OutboxMessage))).scalars().all()
        cards = [r for r in rows if r.recipient == RESIDENT]
        assert len(cards) == 1 and "受理编号" in cards[0].body


async def test_one_message_sent_a_hundred_times_makes_one_ticket_and_one_reply(
    client: TestClient,
) -> None:
    fields = sms_fields(ROUTED_TEXT, sid=new_sid())
    first = await post(client, fields)
    concurrent = await asyncio.gather(*(post(client, fields) for _ in range(60)))
    later = [await post(client, fields) for _ in range(39)]
    responses = [first, *concurrent, *later]
    assert all(status == 200 for status, _ in responses)
    replies = {message_of(body) for _, body in responses}
    # Every copy carries the same card (the first one was answered in its response).
    assert replies == {message_of(first[1])}
    assert (await counts(database_of(client)))[:2] == (1, 1)
    async with database_of(client).reading() as uow:
        rows = (await uow.session.execute(select(OutboxMessage))).scalars().all()
    assert not [r for r in rows if r.recipient == RESIDENT]


@pytest.mark.parametrize(
    ("body", "num_media", "expected"),
    [
        ("", "0", texts.empty_complaint()),
        ("   \u3000 ", "0", texts.empty_complaint()),
        ("", "1", texts.media_only()),
        ("路" * 2001, "0", texts.complaint_too_long(2000)),
    ],
)
async def test_unusable_texts_get_a_polite_answer_and_no_ticket(
    client: TestClient, body: str, num_media: str, expected: str
) -> None:
    fields = [(k, num_media if k == "NumMedia" else v) for k, v in sms_fields(body)]
    status, twiml_body = await post(client, fields)
    assert status == 200
    assert message_of(twiml_body) == expected
    assert (await counts(database_of(client)))[:2] == (1, 0)


async def test_query_by_sms_answers_only_the_owner(client: TestClient) -> None:
    _, card = await post(client, sms_fields(ROUTED_TEXT))
    number = re.search(r"受理编号：(\d+)", message_of(card) or "")
    assert number is not None
    _, own = await post(client, sms_fields(f"查询 {number.group(1)}"))
    assert number.group(1) in (message_of(own) or "")
    _, other = await post(client, sms_fields(f"CX{number.group(1)}", sender="+8613900139000"))
    answer = message_of(other) or ""
    assert "住建局" not in answer and "物业" not in answer
    assert (await counts(database_of(client)))[1] == 1


async def test_carrier_stop_is_recorded_and_left_to_twilio_to_answer(client: TestClient) -> None:
    await post(client, sms_fields(ROUTED_TEXT))
    status, body = await post(client, sms_fields("STOP"))
    assert status == 200 and message_of(body) is None
    async with database_of(client).reading() as uow:
        contact = (
            await uow.session.execute(select(Contact).where(Contact.address == RESIDENT))
        ).scalar_one()
    assert contact.opted_out
    # 订阅 is ours to answer.
    _, body = await post(client, sms_fields("订阅"))
    assert message_of(body)
    async with database_of(client).reading() as uow:
        contact = (
            await uow.session.execute(select(Contact).where(Contact.address == RESIDENT))
        ).scalar_one()
    assert not contact.opted_out


async def test_opt_out_type_field_is_honoured_for_any_word(client: TestClient) -> None:
    fields = [*sms_fields("停止"), ("OptOutType", "STOP")]
    status, body = await post(client, fields)
    assert status == 200 and message_of(body) is None
