"""Bring the departments and staff tables in line with the TOML config at start-up."""

from __future__ import annotations

from handlers.desk_config import DeskConfig
from storage.unit_of_work import Database


async def sync_directory(database: Database, config: DeskConfig) -> None:
    """Upsert every configured department and staff member; audit role changes."""
    async with database.transaction() as uow:
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
        for member in config.staff:
            existing = await uow.directory.staff_member(
                member.telegram_user_id, ids[member.department]
            )
            if existing is not None and existing.role == member.role:
                continue
            await uow.directory.upsert_staff(
                telegram_user_id=member.telegram_user_id,
                department_id=ids[member.department],
                role=member.role,
                name=member.name,
            )
            uow.events.append(
                ticket_id=None,
                actor="config",
                action="staff_role",
                detail={
                    "telegram_user_id": member.telegram_user_id,
                    "department": member.department,
                    "role": member.role,
                },
            )
