"""The config file decides who has rights: removals take effect at the next start."""

from __future__ import annotations

import asyncio

import pytest
from helpers import staff_actor

from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.directory_sync import sync_directory
from handlers.errors import NotAuthorised
from storage.unit_of_work import Database


def without_staff(config: DeskConfig, telegram_user_id: int) -> DeskConfig:
    data = config.model_dump()
    data["staff"] = [s for s in data["staff"] if s["telegram_user_id"] != telegram_user_id]
    return DeskConfig.model_validate(data)


async def config_events(database: Database) -> list[tuple[str, dict[str, object]]]:
    async with database.reading() as uow:
        rows = await uow.events.without_ticket()
    return [(row.action, row.detail) for row in rows]


async def test_staff_dropped_from_the_config_lose_their_rights(desk: Desk) -> None:
    clerk = await staff_actor(desk, 501, "zhujian")
    assert clerk.staff_id is not None

    await sync_directory(desk.database, without_staff(desk.config, 501))

    with pytest.raises(NotAuthorised):
        await staff_actor(desk, 501, "zhujian")
    removed = [d for a, d in await config_events(desk.database) if a == "staff_removed"]
    assert removed == [
        {"telegram_user_id": 501, "department_id": clerk.department_id, "role": None}
    ]
    # Back in the file: back in office, audited again.
    await sync_directory(desk.database, desk.config)
    assert (await staff_actor(desk, 501, "zhujian")).staff_id == clerk.staff_id


async def test_staff_added_in_the_admin_room_survive_a_config_sync(desk: Desk) -> None:
    async with desk.database.transaction() as uow:
        department = await uow.directory.department_by_code("huanbao")
        assert department is not None
        await uow.directory.upsert_staff(
            telegram_user_id=777, department_id=department.id, role="clerk", name="", source="admin"
        )
    await sync_directory(desk.database, desk.config)
    assert (await staff_actor(desk, 777, "huanbao")).role == "clerk"


async def test_unchanged_config_writes_no_events(desk: Desk) -> None:
    before = await config_events(desk.database)
    await sync_directory(desk.database, desk.config)
    assert await config_events(desk.database) == before


async def test_workers_starting_together_sync_once(
    database: Database, desk_config: DeskConfig
) -> None:
    await asyncio.gather(*(sync_directory(database, desk_config) for _ in range(4)))
    async with database.reading() as uow:
        departments = await uow.directory.departments()
    assert sorted(d.code for d in departments) == sorted(d.code for d in desk_config.departments)
    roles = [a for a, _ in await config_events(database) if a == "staff_role"]
    assert len(roles) == len(desk_config.staff)
