"""Group commit: every message stored once, acknowledged only after its batch commits."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from storage.group_commit import InboundBatchWriter, InboundRecord, WriterClosedError
from storage.models import InboundMessage
from storage.unit_of_work import Database


def message(n: int, text: str = "路灯坏了") -> InboundRecord:
    return InboundRecord("sms", f"SM{n:032d}", "+8613800000000", text, {"Body": text})


async def stored_count(database: Database) -> int:
    async with database.reading() as uow:
        return int((await uow.session.execute(select(func.count(InboundMessage.id)))).scalar_one())


async def test_concurrent_messages_share_commits_and_each_key_is_new_once(
    database: Database,
) -> None:
    writer = InboundBatchWriter(database)
    # 300 webhooks at once for 100 distinct messages: each sent three times.
    results = await asyncio.gather(*(writer.record(message(n % 100)) for n in range(300)))
    await writer.close()

    assert await stored_count(database) == 100
    by_key: dict[int, list[bool]] = {}
    for n, result in enumerate(results):
        by_key.setdefault(n % 100, []).append(result.new)
    assert all(flags.count(True) == 1 for flags in by_key.values())
    # Copies of one message all point at its one row.
    assert len({r.inbound_id for r in results}) == 100
    assert writer.batches < 300


async def test_a_message_stored_earlier_is_found_not_stored_again(database: Database) -> None:
    writer = InboundBatchWriter(database)
    first = await writer.record(message(1))
    again = await writer.record(message(1, text="不同的正文也不改变已存的"))
    await writer.close()

    assert first.new and not again.new
    assert again.inbound_id == first.inbound_id
    async with database.reading() as uow:
        row = await uow.inbound.find("sms", f"SM{1:032d}")
    assert row is not None and row.text == "路灯坏了"


async def test_nul_characters_are_stored_without_failing_the_batch(database: Database) -> None:
    writer = InboundBatchWriter(database)
    result = await writer.record(message(7, text="路灯\x00坏了"))
    await writer.close()
    async with database.reading() as uow:
        row = await uow.session.get_one(InboundMessage, result.inbound_id)
    assert row.text == "路灯坏了"
    assert row.raw_payload == {"Body": "路灯\x00坏了"}


async def test_a_failed_batch_fails_every_waiter_and_stores_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = InboundBatchWriter(database)

    async def broken(batch: object) -> object:
        raise ConnectionError("database went away")

    monkeypatch.setattr(writer, "_write", broken)
    outcomes = await asyncio.gather(
        *(writer.record(message(n)) for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    monkeypatch.undo()
    # The writer lives on: the provider's retry is stored.
    assert (await writer.record(message(1))).new
    await writer.close()
    assert await stored_count(database) == 1


async def test_closed_writer_refuses_new_messages(database: Database) -> None:
    writer = InboundBatchWriter(database)
    await writer.record(message(1))
    await writer.close()
    with pytest.raises(WriterClosedError):
        await writer.record(message(2))


async def test_wait_idle_waits_for_queued_writes_within_its_bound(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = InboundBatchWriter(database)
    assert await writer.wait_idle(at_most_seconds=0)
    release = asyncio.Event()
    real_write = writer._write

    async def slow(batch: list[InboundRecord]) -> object:
        await release.wait()
        return await real_write(batch)

    monkeypatch.setattr(writer, "_write", slow)
    pending = asyncio.create_task(writer.record(message(1)))
    await asyncio.sleep(0)
    # A batch is being written: not idle, and the bound is kept.
    assert not await writer.wait_idle(at_most_seconds=0)
    idle = asyncio.create_task(writer.wait_idle(at_most_seconds=30))
    release.set()
    assert await idle
    assert (await pending).new
    await writer.close()
