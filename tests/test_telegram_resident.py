"""Residents on Telegram, end to end through python-telegram-bot and a fake Bot API.

Updates arrive at the real webhook route, are stored, handled by the real
PTB Application, and every answer leaves by the outbox through the real
Telegram sender into the fake Bot API.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fake_telegram import FAKE_TOKEN, FakeBotApi
from helpers import ROUTED_TEXT
from sqlalchemy import func, select

from bot.app import DESK, DISPATCHER, INTAKE, TELEGRAM, create_app
from bot.channels.telegram_bot import SECRET_HEADER, WEBHOOK_PATH, webhook_secret
from bot.settings import Settings
from handlers.desk_config import DeskConfig
from storage.models import Contact, InboundMessage, Ticket

RESIDENT_CHAT = 424242
_update_ids = itertools.count(1000)
_message_ids = itertools.count(1)


def private_message(text: str, chat_id: int = RESIDENT_CHAT, **extra: Any) -> dict[str, Any]:
    """A Telegram update with a private-chat message, as the Bot API sends it."""
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private", "first_name": "王"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "王"},
        "text": text,
        **extra,
    }
    if text.startswith("/"):
        command = text.split()[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {"update_id": next(_update_ids), "message": message}


@pytest.fixture
def fake_api() -> FakeBotApi:
    return FakeBotApi()


@pytest.fixture
async def client(
    database_url: str, desk_config: DeskConfig, fake_api: FakeBotApi
) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        database_auto_migrate=True,
        outbox_dispatch=False,  # the test delivers the outbox itself
        telegram_bot_token=FAKE_TOKEN,
        telegram_webhook_url="https://desk.example.org/telegram/webhook",  # type: ignore[arg-type]
    )
    app = create_app(settings, desk_config, telegram_request=fake_api)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    fake_api.assert_no_unexpected_calls()


async def deliver(client: TestClient, update: dict[str, Any], secret: str | None = None) -> int:  # type: ignore[type-arg]
    """POST the update as Telegram would; returns the status."""
    headers = {SECRET_HEADER: secret if secret is not None else webhook_secret(FAKE_TOKEN)}
    response = await client.post(WEBHOOK_PATH, json=update, headers=headers)
    return response.status


async def settle(client: TestClient) -> None:  # type: ignore[type-arg]
    """Let the intake worker handle what is stored, then send the outbox."""
    app = client.server.app
    await app[INTAKE].drained()
    while await app[DISPATCHER].run_once():
        pass


async def count(client: TestClient, model: type) -> int:  # type: ignore[type-arg]
    async with client.server.app[DESK].database.reading() as uow:
        return int((await uow.session.execute(select(func.count(model.id)))).scalar_one())


async def test_start_registers_the_webhook_with_its_secret(
    client: TestClient,  # type: ignore[type-arg]
    fake_api: FakeBotApi,
) -> None:
    [call] = fake_api.calls_to("setWebhook")
    assert call["url"] == "https://desk.example.org/telegram/webhook"
    assert call["secret_token"] == webhook_secret(FAKE_TOKEN)
    assert FAKE_TOKEN not in call["secret_token"]


async def test_a_complaint_in_a_private_chat_gets_the_service_card(
    client: TestClient,  # type: ignore[type-arg]
    fake_api: FakeBotApi,
) -> None:
    assert await deliver(client, private_message(ROUTED_TEXT)) == 200
    await settle(client)
    to_resident = [m for m in fake_api.sent_messages() if m["chat_id"] == RESIDENT_CHAT]
    assert len(to_resident) == 1
    assert "受理编号" in to_resident[0]["text"] and "住建局" in to_resident[0]["text"]
    assert await count(client, Ticket) == 1


async def test_start_welcomes_and_my_lists_the_residents_tickets(
    client: TestClient,  # type: ignore[type-arg]
    fake_api: FakeBotApi,
) -> None:
    await deliver(client, private_message("/start"))
    await deliver(client, private_message(ROUTED_TEXT))
    await deliver(client, private_message("/my"))
    await settle(client)
    texts = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == RESIDENT_CHAT]
    assert len(texts) == 3
    assert "/status" in texts[0]  # the welcome names the commands
    number = texts[1].split("受理编号：")[1][:9]
    assert number in texts[2]


async def test_status_of_someone_elses_ticket_reveals_nothing(
    client: TestClient,  # type: ignore[type-arg]
    fake_api: FakeBotApi,
) -> None:
    await deliver(client, private_message(ROUTED_TEXT))
    await settle(client)
    [card] = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == RESIDENT_CHAT]
    number = card.split("受理编号：")[1][:9]
    await deliver(client, private_message(f"/status {number}", chat_id=999))
    await settle(client)
    answer = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == 999]
    assert len(answer) == 1 and "住建局" not in answer[0] and "物业" not in answer[0]


async def test_stop_opts_the_resident_out(
    client: TestClient,  # type: ignore[type-arg]
    fake_api: FakeBotApi,
) -> None:
    await deliver(client, private_message("/stop"))
    await settle(client)
    async with client.server.app[DESK].database.reading() as uow:
        contact = (
            await uow.session.execute(select(Contact).where(Contact.address == str(RESIDENT_CHAT)))
        ).scalar_one()
    assert contact.opted_out


async def test_a_redelivered_update_is_handled_once(
    client: TestClient,  # type: ignore[type-arg]
    fake_api: FakeBotApi,
) -> None:
    update = private_message(ROUTED_TEXT)
    for _ in range(5):
        assert await deliver(client, update) == 200
    await settle(client)
    assert await count(client, Ticket) == 1
    assert len([m for m in fake_api.sent_messages() if m["chat_id"] == RESIDENT_CHAT]) == 1


@pytest.mark.parametrize("secret", ["", "wrong-secret", webhook_secret("123:other-bot")])
async def test_a_wrong_or_missing_secret_is_refused_and_nothing_stored(
    client: TestClient,  # type: ignore[type-arg]
    secret: str,
) -> None:
    assert await deliver(client, private_message(ROUTED_TEXT), secret=secret) == 403
    assert await count(client, InboundMessage) == 0


async def test_a_body_that_is_not_an_update_is_a_bad_request(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    assert await deliver(client, {"message": {"text": "hi"}}) == 400  # type: ignore[arg-type]
    assert await count(client, InboundMessage) == 0


async def test_a_rejected_token_stops_the_start_without_showing_it(
    database_url: str, desk_config: DeskConfig, fake_api: FakeBotApi
) -> None:
    from bot.startup import StartupError

    fake_api.fail_next("getMe", 401, "Unauthorized", times=2)
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        database_auto_migrate=True,
        outbox_dispatch=False,
        telegram_bot_token=FAKE_TOKEN,
    )
    app = create_app(settings, desk_config, telegram_request=fake_api, telegram_polling=False)
    server = TestServer(app)
    try:
        with pytest.raises(StartupError) as raised:
            await server.start_server()
    finally:
        await server.close()
    assert "TELEGRAM_BOT_TOKEN" in str(raised.value)
    assert FAKE_TOKEN.split(":")[1] not in str(raised.value)


def rating_tap(number: str, rating: int, chat_id: int = RESIDENT_CHAT) -> dict[str, Any]:
    """The resident taps a button of the rating keyboard."""
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": f"cq{next(_update_ids)}",
            "from": {"id": chat_id, "is_bot": False, "first_name": "王"},
            "chat_instance": "ci-1",
            "data": f"r:{number}:{rating}",
            "message": {
                "message_id": next(_message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": "王"},
                "text": "请评价",
            },
        },
    }


@pytest.mark.parametrize(("rating", "status"), [(1, "closed"), (3, "reopened")])
async def test_the_rating_keyboard_closes_or_reopens(
    client: TestClient,  # type: ignore[type-arg]
    fake_api: FakeBotApi,
    rating: int,
    status: str,
) -> None:
    from helpers import drive_to, load_ticket

    from handlers.workflow import Status

    desk = client.server.app[DESK]
    await deliver(client, private_message(ROUTED_TEXT))
    await settle(client)
    [card] = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == RESIDENT_CHAT]
    number = card.split("受理编号：")[1][:9]
    await drive_to(desk, number, Status.RESOLVED)
    await settle(client)
    keyboards = [
        m["reply_markup"]
        for m in fake_api.sent_messages()
        if m["chat_id"] == RESIDENT_CHAT and m.get("reply_markup")
    ]
    assert [b["callback_data"] for b in keyboards[-1]["inline_keyboard"][0]] == [
        f"r:{number}:1",
        f"r:{number}:2",
        f"r:{number}:3",
    ]
    tap = rating_tap(number, rating)
    await deliver(client, tap)
    await deliver(client, tap)  # Telegram delivered it twice: rated once
    await settle(client)
    assert (await load_ticket(desk, number)).status == status
    assert len(fake_api.calls_to("answerCallbackQuery")) == 1
    last = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == RESIDENT_CHAT][-1]
    assert ("感谢您的评价" in last) if rating == 1 else (number in last)


async def stored_updates(client: TestClient) -> list[InboundMessage]:  # type: ignore[type-arg]
    async with client.server.app[DESK].database.reading() as uow:
        return list(
            (
                await uow.session.execute(
                    select(InboundMessage).where(InboundMessage.channel == "telegram-update")
                )
            )
            .scalars()
            .all()
        )


async def test_a_failed_handler_leaves_the_update_for_another_try(
    client: TestClient,  # type: ignore[type-arg]
    fake_api: FakeBotApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bot.channels.telegram_bot as telegram_bot
    from handlers.inbound import process_pending

    async def database_down(*args: object) -> None:
        raise ConnectionError("database went away")

    real = telegram_bot.handle_incoming
    monkeypatch.setattr(telegram_bot, "handle_incoming", database_down)
    await deliver(client, private_message(ROUTED_TEXT))
    await settle(client)
    [row] = await stored_updates(client)
    assert row.reply_text is None  # not marked handled
    assert await count(client, Ticket) == 0

    monkeypatch.setattr(telegram_bot, "handle_incoming", real)
    app = client.server.app
    front = app[TELEGRAM].front
    assert await process_pending(app[DESK], process=front.process_stored) == 1
    assert await count(client, Ticket) == 1


async def test_an_unreadable_update_is_skipped_not_retried(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    broken = private_message(ROUTED_TEXT)
    broken["message"]["chat"] = {"id": RESIDENT_CHAT}  # no type: PTB cannot build a Chat
    assert await deliver(client, broken) == 200
    await settle(client)
    [row] = await stored_updates(client)
    assert row.reply_text == ""  # handled (skipped): the sweep leaves it alone
    assert await count(client, Ticket) == 0
