"""Department cards and the 台账 never carry who complained: 1,000 generated tickets.

Residents write from phones and Telegram chats (whose updates carry their
names and usernames); every message to a group chat (the departments' cards,
co-handling slips, the admin room's triage notices) and every cell of the
ledger export, as rows and as the written .xlsx, is checked for the full
phone number, the Telegram chat id, the name and the username. A masked
number (138****5678) is what a card or the ledger may show.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeClock
from fake_telegram import FakeBotApi
from openpyxl import load_workbook
from sqlalchemy import select
from test_telegram_resident import client, deliver, fake_api, private_message, settle  # noqa: F401

from bot.app import DESK
from handlers.context import Desk
from handlers.inbound import handle_incoming
from handlers.ledger import export_ledger, ledger_rows
from handlers.messages import IncomingMessage
from storage.models import OutboxMessage

TEMPLATES = [
    "{place}的路灯坏了好几天，晚上很黑",
    "{place}小区电梯经常停运，物业不管",
    "{place}附近工地夜间施工噪音扰民",
    "{place}路面坑洼，车辆经过很危险",
    "{place}饭店油烟污染严重",
    "{place}学校门口交通拥堵",
]
PLACES = ["幸福路", "东湖花园", "建设大道", "江南新村", "人民广场", "光明街"]


def phone(rng: random.Random) -> str:
    return "+86" + rng.choice(["138", "139", "150", "186"]) + f"{rng.randrange(10**8):08d}"


async def register_a_thousand(desk: Desk) -> list[str]:
    """Register the 1,000 generated complaints; the resident details nothing may show.

    Telegram complaints carry the update as the Bot API sends it, with the
    resident's name and username in it, as the Telegram channel stores them.
    """
    rng = random.Random(20261129)
    secrets: list[str] = []
    for n in range(1000):
        text = rng.choice(TEMPLATES).format(place=rng.choice(PLACES)) + f"（第{n}件）"
        raw: dict[str, Any] = {}
        if n % 2:
            channel, address = "sms", phone(rng)
            secrets += [address, address.removeprefix("+86")]
        else:
            channel, address = "telegram", str(rng.randrange(10**8, 10**10))
            name, username = f"张{n}号", f"zhang_user_{n}"
            raw = private_message(text, chat_id=int(address))
            for who in (raw["message"]["from"], raw["message"]["chat"]):
                who.update(first_name=name, username=username)
            secrets += [address, name, username]
        await handle_incoming(desk, IncomingMessage(channel, f"pii-{n}", address, text, raw=raw))
    return secrets


def leaks(texts: Iterable[tuple[object, str]], secrets: list[str]) -> list[tuple[object, str]]:
    """(where, secret) for every secret found in a text."""
    return [(where, s) for where, text in texts for s in secrets if s in text]


async def test_a_thousand_cards_carry_no_contact_of_the_resident(
    desk: Desk, db_backend: str, clock: FakeClock, tmp_path: Path
) -> None:
    if db_backend != "sqlite":
        pytest.skip("what a card shows does not depend on the database; once is enough")
    secrets = await register_a_thousand(desk)

    async with desk.database.reading() as uow:
        rows = (await uow.session.execute(select(OutboxMessage))).scalars().all()
    cards = [r for r in rows if r.channel == "telegram" and r.recipient.startswith("-")]
    assert len(cards) >= 1000  # every ticket reached a group: a department or the admin room
    assert leaks(((r.id, r.body) for r in cards), secrets) == []
    # The masked form is there, so the check above is looking at the right lines.
    assert any("****" in r.body for r in cards)

    # The same tickets in the 台账: the rows, and the cells of the written workbook.
    period = {"since": clock.now - timedelta(days=1), "until": clock.now + timedelta(days=1)}
    ledger = [row async for row in ledger_rows(desk, **period)]
    assert len(ledger) == 1000
    # One text per row (cells joined by a newline no secret contains): 1,000 texts to search.
    lines = [(row.number, "\n".join(str(v) for v in row.values())) for row in ledger]
    assert leaks(lines, secrets) == []
    path = tmp_path / "ledger.xlsx"
    assert await export_ledger(desk, path, **period) == 1000
    sheet = load_workbook(path).active
    assert sheet is not None and sheet.max_row == 1001
    written = [
        (index, "\n".join(str(value) for value in line))
        for index, line in enumerate(sheet.iter_rows(values_only=True), start=1)
    ]
    assert leaks(written, secrets) == []
    contacts = {row.contact for row in ledger}
    assert "Telegram用户" in contacts and any("****" in c for c in contacts)


async def test_telegram_names_and_usernames_never_reach_a_group(
    client: Any,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    people = [(7100000000 + n, f"张{n}号", f"zhang_user_{n}") for n in range(20)]
    for chat_id, name, username in people:
        update = private_message(f"{PLACES[chat_id % 6]}的路灯坏了", chat_id=chat_id)
        update["message"]["from"].update(first_name=name, username=username)
        update["message"]["chat"].update(first_name=name, username=username)
        assert await deliver(client, update) == 200
    await settle(client)
    to_groups = [m["text"] for m in fake_api.sent_messages() if int(m["chat_id"]) < 0]
    assert len(to_groups) >= 20
    for text in to_groups:
        for chat_id, name, username in people:
            assert str(chat_id) not in text and name not in text and username not in text
    assert client.server.app[DESK] is not None
