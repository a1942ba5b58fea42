"""API keys of Open311 clients: issue, revoke, list, and recognise them on a request.

Channel-neutral use cases behind ``complaint-desk apikey`` and the Open311
endpoints. A key is ``secrets.token_urlsafe(32)`` (32 random bytes, 43
characters); it is shown once, when issued, and only its SHA-256 is stored
(see ``storage.models.ApiKey`` for why a fast hash is right). A request's key
is hashed and looked up by that hash, so no stored secret is ever compared
character by character and timing reveals nothing about it.

Names identify clients to operators and in the audit log: they are unique
for good, so a revoked key's name is not reused and old events stay
unambiguous. Revoking stops the key at once; the row stays.

No key ever reaches a log, an audit event or an exception message: only the
name and the prefix (the key's first characters, which listings show) do.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from handlers.errors import DeskError, InvalidInput
from storage.models import DESK_TZ, ApiKey, utcnow
from storage.unit_of_work import Database

logger = logging.getLogger(__name__)

KEY_BYTES: Final = 32
PREFIX_LENGTH: Final = 8
NAME_LENGTH: Final = 100
# Issued keys are 43 characters; anything far longer is refused before hashing.
MAX_KEY_LENGTH: Final = 200
# What token_urlsafe produces: a key with any other character cannot be one of ours.
_KEY_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
# ASCII letters and digits, "-", "_", "." and CJK ideographs (the unified block,
# extension A, the compatibility block and extensions B to G).
_NAME_CHARACTER = re.compile(
    "[A-Za-z0-9._\\-\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
)
_NAME_RULE = "use letters, digits, '-', '_', '.' and CJK ideographs"
ACTION_CREATED: Final = "api_key_created"
ACTION_REVOKED: Final = "api_key_revoked"
CLI_ACTOR: Final = "cli"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just issued: the only time the key itself is known; kept out of ``repr``."""

    name: str
    key: str = field(repr=False)
    prefix: str


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """One key as an operator's listing shows it: never the key, only its prefix."""

    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiClient:
    """The client a request's key belongs to (``ApiKey.id``, kept on the tickets it files)."""

    id: int
    name: str


class UnknownApiKey(DeskError):
    """No API key has that name."""

    resident_message = "没有该名称的 API 密钥。"

    def __init__(self, name: str) -> None:
        super().__init__(f"no API key named {name!r}")
        self.name = name


def key_hash(key: str) -> str:
    """The hex SHA-256 that is stored for ``key`` and looked up on each request."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def normalise_name(name: str) -> str:
    """The name as stored: surrounding blanks dropped, Unicode NFC, checked.

    NFC because the CJK compatibility ideographs turn into their unified
    twins under it: two names that look the same are the same name.
    """
    cleaned = unicodedata.normalize("NFC", name.strip())
    if not 1 <= len(cleaned) <= NAME_LENGTH:
        raise _invalid_name(
            f"an API key name must be 1 to {NAME_LENGTH} characters, got {len(cleaned)}"
        )
    for character in cleaned:
        if not _NAME_CHARACTER.fullmatch(character):
            raise _invalid_name(
                f"API key name {cleaned!r} contains {character!r} "
                f"(U+{ord(character):04X}); {_NAME_RULE}"
            )
    return cleaned


async def create_api_key(database: Database, name: str, *, actor: str = CLI_ACTOR) -> IssuedKey:
    """Issue a key for a new client; raises InvalidInput for a bad or taken name."""
    name = normalise_name(name)
    key = secrets.token_urlsafe(KEY_BYTES)
    prefix = key[:PREFIX_LENGTH]
    async with database.transaction() as uow:
        row = await uow.api_keys.add(
            name=name, key_prefix=prefix, key_hash=key_hash(key), created_at=utcnow()
        )
        if row is None:
            taken = await uow.api_keys.by_name(name)
            raise _invalid_name(_taken_message(name, taken))
        uow.events.append(
            ticket_id=None,
            actor=actor,
            action=ACTION_CREATED,
            detail={"api_key_id": row.id, "name": name, "prefix": prefix},
        )
    logger.info("API key %r issued (prefix %s)", name, prefix)
    return IssuedKey(name=name, key=key, prefix=prefix)


async def revoke_api_key(database: Database, name: str, *, actor: str = CLI_ACTOR) -> bool:
    """Stop the named key from working; False if it was already revoked.

    Raises UnknownApiKey when no key has that name.
    """
    try:
        name = normalise_name(name)
    except InvalidInput as exc:
        raise UnknownApiKey(name) from exc
    async with database.transaction() as uow:
        row = await uow.api_keys.by_name(name)
        if row is None:
            raise UnknownApiKey(name)
        revoked = await uow.api_keys.revoke(name, utcnow())
        if revoked:
            uow.events.append(
                ticket_id=None,
                actor=actor,
                action=ACTION_REVOKED,
                detail={"api_key_id": row.id, "name": name, "prefix": row.key_prefix},
            )
    if revoked:
        logger.info("API key %r revoked (prefix %s)", name, row.key_prefix)
    return revoked


async def list_api_keys(database: Database) -> list[ApiKeyInfo]:
    """Every key ever issued, revoked ones included, oldest first."""
    async with database.reading() as uow:
        rows = await uow.api_keys.all()
    return [ApiKeyInfo(r.name, r.key_prefix, r.created_at, r.revoked_at) for r in rows]


async def authenticate(database: Database, key: str | None) -> ApiClient | None:
    """The client whose live key this is; None for a missing, malformed, unknown or revoked key."""
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY_ALPHABET.fullmatch(key):
        return None
    async with database.reading() as uow:
        row = await uow.api_keys.by_hash(key_hash(key))
    if row is None or row.revoked_at is not None:
        return None
    return ApiClient(id=row.id, name=row.name)


def _taken_message(name: str, taken: ApiKey | None) -> str:
    if taken is None:  # Only if it was taken and then deleted; keys are never deleted.
        return f"an API key named {name!r} already exists; choose another name"
    created = _local(taken.created_at)
    if taken.revoked_at is None:
        return f"an API key named {name!r} already exists (created {created}); choose another name"
    return (
        f"an API key named {name!r} already exists (created {created}, revoked "
        f"{_local(taken.revoked_at)}); names are not reused, choose another name"
    )


def _invalid_name(operator_message: str) -> InvalidInput:
    return InvalidInput(operator_message, "API 密钥名称无效或已被使用。")


def _local(moment: datetime) -> str:
    return moment.astimezone(DESK_TZ).strftime("%Y-%m-%d %H:%M")
