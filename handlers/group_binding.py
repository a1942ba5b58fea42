"""Binding departments to their group chats from the chat itself (``/bind``).

An administrator of the centre adds the bot to a department's group and sends
``/bind <department code>`` there; the group (and the forum topic, if the
command came from one) becomes where that department's tickets appear. A group
that Telegram upgrades to a supergroup changes its chat id; its department
follows. A group named in the config file is the config's: ``/bind`` refuses
to move it, so the file stays the source of truth for what it lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.context import Desk
from handlers.errors import InvalidInput, NotAuthorised

BIND_ROLES = frozenset({"admin"})


@dataclass(frozen=True, slots=True)
class Bound:
    """Which department the chat now serves."""

    code: str
    name: str


async def bind_group(
    desk: Desk, telegram_user_id: int, chat_id: int, thread_id: int | None, code: str
) -> Bound:
    """Bind the chat (and topic) to department ``code``; only the centre's admins may."""
    configured = {d.code: d for d in desk.config.departments}
    async with desk.database.transaction() as uow:
        centre = await uow.directory.department_by_code(desk.config.desk.supervision_department)
        member = (
            await uow.directory.staff_member(telegram_user_id, centre.id)
            if centre is not None
            else None
        )
        if member is None or member.role not in BIND_ROLES:
            raise NotAuthorised(f"user {telegram_user_id} may not bind groups")
        department = await uow.directory.department_by_code(code.strip())
        if department is None or not department.active:
            known = "、".join(sorted(configured))
            raise InvalidInput(
                f"unknown department {code!r}", resident_message=f"没有这个单位代码。可用：{known}"
            )
        listed = configured.get(department.code)
        if listed is not None and listed.chat_id is not None and listed.chat_id != chat_id:
            raise InvalidInput(
                f"{department.code} has its group in the config file",
                resident_message="该单位的工作群已在配置文件中指定，请修改配置文件。",
            )
        department.chat_id, department.thread_id = chat_id, thread_id
        uow.events.append(
            ticket_id=None,
            actor=f"telegram:{telegram_user_id}",
            action="department_bound",
            detail={"department": department.code, "chat_id": chat_id, "thread_id": thread_id},
        )
        return Bound(department.code, department.name)


async def chat_migrated(desk: Desk, old_chat_id: int, new_chat_id: int) -> int:
    """Telegram moved a group to a new chat id: the departments bound to it follow."""
    async with desk.database.transaction() as uow:
        moved = await uow.directory.move_chat(old_chat_id, new_chat_id)
        if moved:
            uow.events.append(
                ticket_id=None,
                actor="telegram",
                action="chat_migrated",
                detail={"from": old_chat_id, "to": new_chat_id},
            )
    return moved


async def bot_left_group(desk: Desk, chat_id: int) -> str | None:
    """The bot was removed from a group: the department bound to it, if any (audited).

    The binding stays (the department's cards fail visibly as dead letters
    until someone adds the bot back or binds another group); the admin room
    is told by the caller.
    """
    async with desk.database.transaction() as uow:
        department = await uow.directory.department_by_chat(chat_id)
        if department is None:
            return None
        uow.events.append(
            ticket_id=None,
            actor="telegram",
            action="bot_removed_from_group",
            detail={"department": department.code, "chat_id": chat_id},
        )
        return department.name
