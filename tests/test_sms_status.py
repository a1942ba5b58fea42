"""Delivery-status callbacks: signed, and a row's status only ever moves forward.

The property test sends the callbacks of one message's life (queued, sent,
then one final status) shuffled and repeated, through the real endpoint, and
checks after every callback that the stored status never went back, and at
the end that it is the final one.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import make_desk_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from test_sms_webhook import PUBLIC, TOKEN, sign

from bot.app import DESK, create_app
from bot.settings import Settings
from storage.models import OutboxMessage
from storage.repositories.outbox import DELIVERY_RANK

T = TypeVar("T")
_sids = itertools.count(1)
FINALS = ("delivered", "undelivered", "failed")


class Harness:
    """One running desk on its own event loop, shared by the examples of a property."""

    def __init__(self, directory: Path) -> None:
        self.loop = asyncio.new_event_loop()
        app_settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{directory / 'desk.db'}",
            database_auto_migrate=True,
            outbox_dispatch=False,
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token=TOKEN,
            twilio_from_number="+8610690000",
            public_base_url=PUBLIC,  # type: ignore[arg-type]
        )
        self.client = self.run(self._start(app_settings))

    @staticmethod
    async def _start(app_settings: Settings) -> TestClient:  # type: ignore[type-arg]
        # aiohttp's server objects must be built inside the running loop.
        client = TestClient(TestServer(create_app(app_settings, make_desk_config())))
        await client.start_server()
        return client

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    async def sent_message(self) -> str:
        """A sent outbox row; its provider SID."""
        sid = f"SM{next(_sids):032x}"
        async with self.client.server.app[DESK].database.transaction() as uow:
            row = await uow.outbox.enqueue(channel="sms", recipient="+8613800000000", body="测试")
            row.status, row.provider_message_id = "sent", sid
        return sid

    async def callback(self, sid: str, status: str, error: str | None = None) -> int:
        fields = [("MessageSid", sid), ("MessageStatus", status), ("AccountSid", "AC" + "0" * 32)]
        if error:
            fields.append(("ErrorCode", error))
        headers = {"X-Twilio-Signature": sign(PUBLIC + "/sms/status", fields)}
        response = await self.client.post("/sms/status", data=fields, headers=headers)
        return response.status

    async def stored(self, sid: str) -> tuple[str | None, str | None]:
        async with self.client.server.app[DESK].database.reading() as uow:
            row = (
                await uow.session.execute(
                    select(OutboxMessage).where(OutboxMessage.provider_message_id == sid)
                )
            ).scalar_one()
        return row.delivery_status, row.delivery_error_code

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.close()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with tempfile.TemporaryDirectory() as directory:
        running = Harness(Path(directory))
        try:
            yield running
        finally:
            running.close()


lives = st.sampled_from(FINALS).flatmap(
    lambda final: st.lists(st.sampled_from(["queued", "sent", final]), min_size=1, max_size=12).map(
        lambda order: (final, order)
    )
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(life=lives)
def test_shuffled_and_repeated_callbacks_only_move_forward(
    harness: Harness, life: tuple[str, list[str]]
) -> None:
    final, order = life
    sid = harness.run(harness.sent_message())
    best = -1
    for status in order:
        assert (
            harness.run(harness.callback(sid, status, "30003" if status == "undelivered" else None))
            == 204
        )
        stored, _ = harness.run(harness.stored(sid))
        best = max(best, DELIVERY_RANK[status])
        assert stored is not None and DELIVERY_RANK[stored] == best
    if final in order:
        assert harness.run(harness.stored(sid))[0] == final


def test_a_final_status_keeps_its_error_code(harness: Harness) -> None:
    sid = harness.run(harness.sent_message())
    assert harness.run(harness.callback(sid, "undelivered", "30005")) == 204
    assert harness.run(harness.callback(sid, "sent")) == 204
    assert harness.run(harness.stored(sid)) == ("undelivered", "30005")


def test_unknown_sids_and_statuses_change_nothing(harness: Harness) -> None:
    sid = harness.run(harness.sent_message())
    assert harness.run(harness.callback(f"SM{'f' * 32}", "delivered")) == 204
    assert harness.run(harness.callback(sid, "exploded")) == 204
    assert harness.run(harness.stored(sid)) == (None, None)


def test_unsigned_status_callbacks_are_refused(harness: Harness) -> None:
    sid = harness.run(harness.sent_message())

    async def unsigned() -> int:
        response = await harness.client.post(
            "/sms/status", data={"MessageSid": sid, "MessageStatus": "delivered"}
        )
        return response.status

    assert harness.run(unsigned()) == 403
    assert harness.run(harness.stored(sid)) == (None, None)
