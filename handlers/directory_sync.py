"""Bring the departments and staff tables in line with the TOML config at start-up.

The config file is the source of truth for what it lists: departments and
staff it no longer names are deactivated (their rights end at once), and every
change is in the audit log. Staff added from the admin room are left alone.
"""

from __future__ import annotations

from handlers.desk_config import DeskConfig
from storage.unit_of_work import Database, UnitOfWork

SOURCE = "config"


async def sync_directory(database: Database, config: DeskConfig) -> None:
    """Upsert configured departments and staff; deactivate those the config dropped."""
    async with database.transaction() as uow:
        await uow.directory.lock_directory()
        ids = await _sync_departments(uow, config)
        wanted = {(m.telegram_user_id, ids[m.department]): m for m in config.staff}
        for staff in await uow.directory.staff_of(SOURCE):
            key = (staff.telegram_user_id, staff.department_id)
            if staff.active and key not in wanted:
                staff.active = False
                _audit(uow, "staff_removed", staff.telegram_user_id, staff.department_id, None)
        for (user_id, department_id), member in wanted.items():
            existing = await uow.directory.staff_member(user_id, department_id)
            if existing is not None and (existing.role, existing.name) == (
                member.role,
                member.name,
            ):
                continue
            await uow.directory.upsert_staff(
                telegram_user_id=user_id,
                department_id=department_id,
                role=member.role,
                name=member.name,
                source=SOURCE,
            )
            _audit(uow, "staff_role", user_id, department_id, member.role)


async def _sync_departments(uow: UnitOfWork, config: DeskConfig) -> dict[str, int]:
    ids: dict[str, int] = {}
    for department in config.departments:
        row = await uow.directory.upsert_department(
            code=department.code,
            name=department.name,
            short_name=department.short_name,
            chat_id=department.chat_id,
            thread_id=department.thread_id,
            is_supervision=department.code == config.desk.supervision_department,
        )
        ids[department.code] = row.id
    for row in await uow.directory.departments():
        if row.active and row.code not in ids:
            row.active = False
            uow.events.append(
                ticket_id=None,
                actor="config",
                action="department_removed",
                detail={"department": row.code},
            )
    return ids


def _audit(
    uow: UnitOfWork, action: str, user_id: int, department_id: int, role: str | None
) -> None:
    uow.events.append(
        ticket_id=None,
        actor="config",
        action=action,
        detail={"telegram_user_id": user_id, "department_id": department_id, "role": role},
    )
