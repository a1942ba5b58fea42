"""Open311 clients' API keys: stored as hashes, looked up by hash, revoked, never deleted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ApiKey
from storage.repositories.upsert import insert_if_absent


class ApiKeyRepository:
    """Add, find, list and revoke API keys."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, *, name: str, key_prefix: str, key_hash: str, created_at: datetime
    ) -> ApiKey | None:
        """Store a new key; None when a key (live or revoked) already has this name.

        Insert-on-conflict rather than check-then-insert, so two operators
        creating the same name at once cannot both succeed.
        """
        new_id = await insert_if_absent(
            self._session,
            ApiKey,
            {
                "name": name,
                "key_prefix": key_prefix,
                "key_hash": key_hash,
                "created_at": created_at,
            },
            ["name"],
        )
        if new_id is None:
            return None
        return await self._session.get_one(ApiKey, new_id)

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not."""
        result = await self._session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))
        return result.scalar_one_or_none()

    async def by_name(self, name: str) -> ApiKey | None:
        """The key with this name, revoked or not."""
        result = await self._session.execute(select(ApiKey).where(ApiKey.name == name))
        return result.scalar_one_or_none()

    async def all(self) -> Sequence[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        result = await self._session.execute(select(ApiKey).order_by(ApiKey.id))
        return result.scalars().all()

    async def revoke(self, name: str, at: datetime) -> bool:
        """Revoke the named key; False if there is none or it was already revoked.

        One conditional UPDATE: the first revocation's time stays.
        """
        result = await self._session.execute(
            update(ApiKey)
            .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(ApiKey.id)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none() is not None
