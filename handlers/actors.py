"""Who is acting: staff rights come from the role table, keyed on the numeric
Telegram user id and the department (or the group chat bound to it), never a
username. Channel adapters call these; they never decide rights themselves.
"""

from __future__ import annotations

from handlers.context import Desk
from handlers.errors import NotAuthorised
from handlers.messages import Actor
from storage.models import Department, Staff
from storage.unit_of_work import UnitOfWork

# Roles in the supervision office that act for the centre itself.
CENTRE_ROLES = frozenset({"supervisor", "admin"})


def actor_for(staff: Staff, department: Department) -> Actor:
    """The actor a staff record stands for in its department."""
    return Actor(
        kind="staff",
        label=f"staff:{staff.id}",
        staff_id=staff.id,
        department_id=department.id,
        role=staff.role,
        centre=department.is_supervision and staff.role in CENTRE_ROLES,
    )


async def _role(
    uow: UnitOfWork, telegram_user_id: int, department: Department | None
) -> Actor | None:
    """The actor this user is in an active department, or None without a role there."""
    if department is None or not department.active:
        return None
    staff = await uow.directory.staff_member(telegram_user_id, department.id)
    return None if staff is None else actor_for(staff, department)


async def staff_in_department(desk: Desk, telegram_user_id: int, department_code: str) -> Actor:
    """The actor for a user in a department, or NotAuthorised."""
    async with desk.database.reading() as uow:
        department = await uow.directory.department_by_code(department_code)
        actor = await _role(uow, telegram_user_id, department)
    if actor is None:
        raise NotAuthorised(f"user {telegram_user_id} is not staff of {department_code}")
    return actor


async def staff_in_chat(desk: Desk, telegram_user_id: int, chat_id: int) -> Actor:
    """The actor for a user writing in a group chat: the chat names the department.

    The centre's admin room stands for the supervision office, where only its
    supervisors and admins may act.
    """
    admin_room = chat_id == desk.config.desk.admin_chat_id
    async with desk.database.reading() as uow:
        if admin_room:
            department = await uow.directory.department_by_code(
                desk.config.desk.supervision_department
            )
        else:
            department = await uow.directory.department_by_chat(chat_id)
        actor = await _role(uow, telegram_user_id, department)
    if actor is None or (admin_room and not actor.is_centre):
        raise NotAuthorised(f"user {telegram_user_id} has no role in chat {chat_id}")
    return actor
