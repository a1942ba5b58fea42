"""Open311 clients' API keys: issue, recognise, revoke, list, and the ``apikey`` command.

The use cases run on every backend of the ``database`` fixture; the command
runs in-process through ``bot.cli.main`` on a SQLite file. What is stored is
read back with plain SQL, so a key kept in clear anywhere would show.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import text

from bot.cli import main
from bot.startup import open_database
from handlers.api_keys import (
    MAX_KEY_LENGTH,
    ApiClient,
    UnknownApiKey,
    authenticate,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from handlers.errors import InvalidInput
from storage.unit_of_work import Database


async def stored_rows(database: Database) -> list[dict[str, Any]]:
    """Every api_keys row, every column, as the database has it."""
    async with database.engine.connect() as connection:
        result = await connection.execute(text("SELECT * FROM api_keys ORDER BY id"))
        return [dict(row._mapping) for row in result]


async def audit(database: Database) -> list[tuple[str, str, dict[str, Any]]]:
    """(actor, action, detail) of the events about no ticket."""
    async with database.reading() as uow:
        return [(e.actor, e.action, e.detail) for e in await uow.events.without_ticket()]


class NoLookups:
    """A database that fails the test if anything is looked up in it."""

    def reading(self) -> None:
        raise AssertionError("the key was looked up in the database")

    transaction = reading


# ------------------------------------------------------------ the use cases


async def test_an_issued_key_authenticates_as_its_client(database: Database) -> None:
    issued = await create_api_key(database, "acme-311.v2")
    other = await create_api_key(database, "市数字城管平台")

    assert (issued.name, len(issued.key), issued.prefix) == ("acme-311.v2", 43, issued.key[:8])
    assert issued.key not in repr(issued)
    rows = await stored_rows(database)
    assert await authenticate(database, issued.key) == ApiClient(rows[0]["id"], "acme-311.v2")
    assert await authenticate(database, other.key) == ApiClient(rows[1]["id"], "市数字城管平台")
    assert issued.key != other.key


async def test_only_the_hash_and_the_prefix_are_stored(database: Database) -> None:
    issued = await create_api_key(database, "acme")

    [row] = await stored_rows(database)
    assert row["key_hash"] == hashlib.sha256(issued.key.encode()).hexdigest()
    assert row["key_prefix"] == issued.key[:8]
    assert row["revoked_at"] is None
    for column, value in row.items():
        assert issued.key not in str(value), column
    for _actor, _action, detail in await audit(database):
        assert issued.key not in str(detail)


async def test_a_revoked_key_stops_working_and_the_revocation_is_audited(
    database: Database,
) -> None:
    issued = await create_api_key(database, "acme")
    kept = await create_api_key(database, "other")

    assert await revoke_api_key(database, "acme") is True
    assert await authenticate(database, issued.key) is None
    assert await authenticate(database, kept.key) is not None
    # Again: nothing changes, the first revocation's time stays.
    first = (await stored_rows(database))[0]["revoked_at"]
    assert await revoke_api_key(database, "acme") is False
    assert (await stored_rows(database))[0]["revoked_at"] == first

    events = await audit(database)
    assert [(actor, action) for actor, action, _ in events] == [
        ("cli", "api_key_created"),
        ("cli", "api_key_created"),
        ("cli", "api_key_revoked"),
    ]
    assert events[2][2] == {
        "api_key_id": (await stored_rows(database))[0]["id"],
        "name": "acme",
        "prefix": issued.prefix,
    }


async def test_revoking_an_unknown_name_says_so(database: Database) -> None:
    await create_api_key(database, "acme")
    for name in ("nobody", "ACME", "bad name/"):
        with pytest.raises(UnknownApiKey, match=f"no API key named {name!r}"):
            await revoke_api_key(database, name)
    assert [action for _, action, _ in await audit(database)] == ["api_key_created"]


async def test_the_listing_shows_every_key_without_the_key(database: Database) -> None:
    first = await create_api_key(database, "acme")
    second = await create_api_key(database, "beta")
    await revoke_api_key(database, "acme")

    listed = await list_api_keys(database)

    assert [(k.name, k.prefix) for k in listed] == [
        ("acme", first.prefix),
        ("beta", second.prefix),
    ]
    assert listed[0].revoked_at is not None and listed[1].revoked_at is None
    assert listed[0].created_at.tzinfo is not None
    assert first.key not in repr(listed) and second.key not in repr(listed)


async def test_a_name_is_taken_for_good(database: Database) -> None:
    await create_api_key(database, "acme")
    with pytest.raises(InvalidInput) as live:
        await create_api_key(database, " acme ")
    assert str(live.value).startswith("an API key named 'acme' already exists (created ")
    assert str(live.value).endswith("); choose another name")

    await revoke_api_key(database, "acme")
    with pytest.raises(InvalidInput, match=r"\(created .*, revoked .*\); names are not reused"):
        await create_api_key(database, "acme")
    # A compatibility ideograph is the same name as its unified twin.
    await create_api_key(database, "\u8c48")
    with pytest.raises(InvalidInput, match="already exists"):
        await create_api_key(database, "\uf900")

    assert [row["name"] for row in await stored_rows(database)] == ["acme", "\u8c48"]
    assert len(await audit(database)) == 3  # two creations, one revocation


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "an API key name must be 1 to 100 characters, got 0"),
        ("   ", "an API key name must be 1 to 100 characters, got 0"),
        ("a" * 101, "an API key name must be 1 to 100 characters, got 101"),
        ("acme corp", "API key name 'acme corp' contains ' ' (U+0020); use letters, digits"),
        ("acme/1", "API key name 'acme/1' contains '/' (U+002F)"),
        ("城管😀", "contains '😀' (U+1F600)"),
        ("acme\x00", "contains '\\x00' (U+0000)"),
        ("Ünited", "contains 'Ü' (U+00DC)"),
    ],
    ids=["empty", "blank", "long", "space", "slash", "emoji", "nul", "latin1"],
)
async def test_a_bad_name_is_refused_with_the_reason(
    database: Database, name: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await create_api_key(database, name)
    assert message in str(refused.value)
    assert await stored_rows(database) == []


@pytest.mark.parametrize("name", ["a" * 100, "市住建局-app_1.0", "Z9", "㐀𠀀"])
async def test_good_names_are_accepted(database: Database, name: str) -> None:
    issued = await create_api_key(database, name)
    assert [row["name"] for row in await stored_rows(database)] == [issued.name] == [name]


@pytest.mark.parametrize(
    "key",
    [None, "", "a" * (MAX_KEY_LENGTH + 1), "x" * 10_000, "abc def", "abc\n", "ключ", "a=b"],
    ids=["none", "empty", "just-too-long", "huge", "space", "newline", "cyrillic", "equals"],
)
async def test_missing_oversized_or_malformed_keys_are_refused_without_a_lookup(
    key: str | None,
) -> None:
    assert await authenticate(cast(Database, NoLookups()), key) is None


async def test_a_well_formed_key_is_looked_up() -> None:
    # The other side of the test above: NoLookups really does catch a lookup.
    with pytest.raises(AssertionError, match="looked up"):
        await authenticate(cast(Database, NoLookups()), "a" * MAX_KEY_LENGTH)


async def test_unknown_and_nearly_right_keys_are_refused(database: Database) -> None:
    issued = await create_api_key(database, "acme")
    flipped = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")
    for key in (flipped, issued.key[:-1], issued.key + "A", issued.prefix, issued.key.upper()):
        assert await authenticate(database, key) is None, key
    assert await authenticate(database, issued.key) is not None


# ------------------------------------------------------------ the command


@pytest.fixture
def database_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """DATABASE_URL naming a SQLite file in ``tmp_path``; the command runs from there."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("DESK_CONFIG", raising=False)
    return url


async def _authenticate(url: str, key: str) -> ApiClient | None:
    database = await open_database(url)
    try:
        return await authenticate(database, key)
    finally:
        await database.dispose()


def test_the_apikey_command_issues_lists_and_revokes(
    database_file: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    assert main(["--debug", "apikey", "create", "acme"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("API key for 'acme' (prefix ")
    key = lines[1]
    assert len(key) == 43 and lines[0] == f"API key for 'acme' (prefix {key[:8]}):"
    assert lines[2] == "Store it now: it cannot be shown again (only its hash is kept)."
    client = asyncio.run(_authenticate(database_file, key))
    assert client is not None and client.name == "acme"

    assert main(["apikey", "list"]) == 0
    out, _ = capsys.readouterr()
    header, row = out.splitlines()
    assert header.split() == ["name", "prefix", "created", "revoked"]
    assert row.split()[:2] == ["acme", key[:8]]
    assert row.endswith("  -")
    assert key not in out

    assert main(["apikey", "revoke", "acme"]) == 0
    assert capsys.readouterr().out == "revoked API key 'acme'\n"
    assert asyncio.run(_authenticate(database_file, key)) is None
    assert main(["apikey", "revoke", "acme"]) == 0
    assert capsys.readouterr().out == "API key 'acme' was already revoked\n"
    assert main(["apikey", "list"]) == 0
    assert not capsys.readouterr().out.splitlines()[1].endswith("  -")

    # The issue was logged, by name and prefix, and nothing anywhere logged the key.
    messages = [record.getMessage() for record in caplog.records]
    assert f"API key 'acme' issued (prefix {key[:8]})" in messages
    assert not [m for m in messages if key in m]
    assert key not in caplog.text and key not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["create", "acme"],
            "complaint-desk: an API key named 'acme' already exists (created ",
        ),
        (
            ["revoke", "nobody"],
            "complaint-desk: no API key named 'nobody'; see `complaint-desk apikey list`",
        ),
        (
            ["create", "acme corp"],
            "complaint-desk: API key name 'acme corp' contains ' ' (U+0020)",
        ),
    ],
    ids=["duplicate", "unknown", "bad-name"],
)
def test_the_apikey_command_refuses_with_one_line(
    database_file: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["apikey", "create", "acme"]) == 0
    capsys.readouterr()

    assert main(["apikey", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = [line for line in err.splitlines() if line.startswith("complaint-desk:")]
    assert line.startswith(message)
    assert "Traceback" not in err


def test_an_empty_listing_says_how_to_issue_a_key(
    database_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apikey", "list"]) == 0
    assert capsys.readouterr().out == (
        "no API keys; issue one with: complaint-desk apikey create NAME\n"
    )
