"""Crash recovery: a writer killed with SIGKILL mid-stream loses nothing it acknowledged.

``tests/crash_writer.py`` registers messages ``crash-0 .. crash-199`` and prints
an ACK line after each commit. The test SIGKILLs it after some ACKs, then runs
it again over the whole range, as a provider retrying every message would, and
checks the database: each acknowledged message stored once with one ticket,
the retry answered with the very same ticket numbers, no ticket, card or audit
event written twice, and (on SQLite) a file that passes ``integrity_check``.

Nothing sleeps: the writer's stdout is read line by line, and one generous
deadline per run turns a hung writer into a failure instead of a hung suite.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import make_desk_config
from crash_writer import desk_config_toml, external_id
from sqlalchemy import text

from handlers.desk_config import DeskConfig
from storage.db import create_engine, is_sqlite, sqlite_path
from storage.migrate import upgrade

WRITER = Path(__file__).with_name("crash_writer.py")
TOTAL = 200
KILL_AFTER = 40
# Per writer run; a healthy run takes a few seconds, a hung one fails here.
RUN_DEADLINE_SECONDS = 120
ACK_LINE = re.compile(r"ACK (\d+) (\S+) (new|dup)")


@dataclass
class WriterRun:
    """What one writer process acknowledged, and how it ended."""

    numbers: dict[int, str] = field(default_factory=dict)
    replayed: set[int] = field(default_factory=set)
    order: list[int] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """The test desk as the TOML file the writer process loads."""
    path = tmp_path / "desk.toml"
    # Every message must become its own ticket here: merging is tested elsewhere.
    data = make_desk_config().model_dump()
    data["duplicates"]["enabled"] = False
    path.write_text(desk_config_toml(DeskConfig.model_validate(data)), encoding="utf-8")
    return path


async def run_writer(url: str, config: Path, *, kill_after: int | None = None) -> WriterRun:
    """Run the writer over ``0 .. TOTAL-1``; SIGKILL it after ``kill_after`` ACKs if given."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRITER),
        url,
        str(config),
        "0",
        str(TOTAL),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    # Drained concurrently so a chatty writer cannot block on a full stderr pipe.
    stderr = asyncio.create_task(process.stderr.read())
    run = WriterRun()
    try:
        async with asyncio.timeout(RUN_DEADLINE_SECONDS):
            # Read to EOF even after the kill: lines already in the pipe were
            # printed after their commit, so they are acknowledgements too.
            while line := (await process.stdout.readline()).decode():
                found = ACK_LINE.fullmatch(line.rstrip("\n"))
                assert found, f"unexpected writer output: {line!r}"
                i, number, kind = int(found[1]), found[2], found[3]
                run.numbers[i] = number
                run.order.append(i)
                if kind == "dup":
                    run.replayed.add(i)
                if len(run.order) == kill_after:
                    process.send_signal(signal.SIGKILL)
            run.returncode = await process.wait()
            run.stderr = (await stderr).decode(errors="replace")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        stderr.cancel()
    return run


@dataclass
class Stored:
    """What the database holds after both runs."""

    inbound: list[tuple[str, int | None]]  # (external id, ticket id)
    tickets: dict[int, str]  # ticket id -> number
    register_events: Counter[int]  # ticket id -> audit events of its registration
    cards: Counter[int]  # ticket id -> service cards queued for the resident


async def read_stored(url: str) -> Stored:
    """Read back every row the writers can have written, with plain SQL."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            inbound = await connection.execute(
                text("SELECT external_id, ticket_id FROM inbound_messages WHERE channel = 'sms'")
            )
            tickets = await connection.execute(text("SELECT id, number FROM tickets"))
            events = await connection.execute(
                text("SELECT ticket_id FROM ticket_events WHERE action = 'register'")
            )
            cards = await connection.execute(
                text("SELECT ticket_id FROM outbox_messages WHERE purpose = 'card'")
            )
            return Stored(
                inbound=[(row.external_id, row.ticket_id) for row in inbound],
                tickets={row.id: row.number for row in tickets},
                register_events=Counter(row.ticket_id for row in events),
                cards=Counter(row.ticket_id for row in cards),
            )
    finally:
        await engine.dispose()


def integrity_check(path: str) -> str:
    """SQLite's own verdict on the file."""
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    database_url: str, config_file: Path
) -> None:
    if not is_sqlite(database_url):
        # The server only checks a PostgreSQL schema (production migrates it
        # with `complaint-desk db upgrade`); SQLite is migrated by the writer.
        engine = create_engine(database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    first = await run_writer(database_url, config_file, kill_after=KILL_AFTER)
    assert first.returncode == -signal.SIGKILL, f"writer was not killed:\n{first.stderr}"
    assert KILL_AFTER <= len(first.numbers) < TOTAL, "the kill did not land mid-stream"
    assert first.order == list(range(len(first.order))), "writer acknowledged out of order"
    assert not first.replayed, "a fresh database replayed a message"

    second = await run_writer(database_url, config_file)
    assert second.returncode == 0, f"restarted writer failed:\n{second.stderr}"
    assert second.order == list(range(TOTAL))

    # The retry of an acknowledged message gets the ticket it was promised.
    for i, number in first.numbers.items():
        assert second.numbers[i] == number, f"crash-{i}: {number} before, {second.numbers[i]} after"
        assert i in second.replayed, f"crash-{i} was acknowledged, yet registered again"
    # At most the one message in flight at the kill committed without its ACK.
    committed_unacked = second.replayed - first.numbers.keys()
    assert len(committed_unacked) <= 1, f"replayed but never acknowledged: {committed_unacked}"
    assert len(set(second.numbers.values())) == TOTAL, "two messages share a ticket number"

    stored = await read_stored(database_url)
    inbound, tickets = stored.inbound, stored.tickets
    per_id = Counter(eid for eid, _ in inbound)
    acknowledged = first.numbers.keys() | second.numbers.keys()
    for i in acknowledged:
        assert per_id[external_id(i)] == 1, f"crash-{i} stored {per_id[external_id(i)]} times"
    assert set(per_id) == {external_id(i) for i in range(TOTAL)}
    ticket_ids = [ticket_id for _, ticket_id in inbound]
    assert None not in ticket_ids, "an inbound message was stored without its ticket"
    assert len(set(ticket_ids)) == len(ticket_ids), "two inbound messages share a ticket"
    assert len(tickets) == len(per_id), f"{len(tickets)} tickets for {len(per_id)} messages"
    by_external_id = {eid: tickets[tid] for eid, tid in inbound if tid is not None}
    for i, number in second.numbers.items():
        assert by_external_id[external_id(i)] == number, f"crash-{i}: stored number differs"
    for ticket_id in tickets:
        assert stored.register_events[ticket_id] == 1, f"ticket {ticket_id}: register events"
        assert stored.cards[ticket_id] == 1, f"ticket {ticket_id}: service cards queued"

    path = sqlite_path(database_url)
    if path is not None:
        assert await asyncio.to_thread(integrity_check, path) == "ok"
