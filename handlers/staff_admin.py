"""Department staff managed by the centre: add, remove and list (the admin room's ``/staff``).

Channel-neutral use cases. Only the centre's admins (role ``admin`` in the
supervision office) may add or remove staff; its supervisors may list them.
Rows written here get ``source="admin"``. Removing only ends the rights
(``active`` False): the row stays, because tickets and events refer to staff
ids; adding the same person again reactivates it. Every add and remove is in
the audit log, written in the same transaction as the change.

The TOML file and the admin room: the file stays the source of truth for the
(user, department) pairs it lists, as it is for the groups it names (see
``/bind``). ``directory_sync`` re-applies every listed pair at each start,
whatever the row's source, and leaves unlisted ``admin`` rows alone. So a
listed member removed here loses their rights at once (what matters when
someone leaves) but is back after the next start unless the file is edited
too; a listed member's role changed here goes back to the file's. The
answer says so (``StaffChange.config_role``) instead of the start silently
undoing the room's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from handlers.context import Desk
from handlers.errors import InvalidInput, NotAuthorised
from handlers.messages import Actor
from storage.models import Department, Staff
from storage.unit_of_work import UnitOfWork

SOURCE: Final = "admin"
ROLES: Final = ("clerk", "supervisor", "admin")
# The centre role that may change who has rights (supervisors may only look).
MANAGE_ROLE: Final = "admin"
# The staff table's column widths: a user id is a BIGINT, a name 100 characters.
MAX_USER_ID: Final = 2**63 - 1
NAME_LENGTH: Final = 100


@dataclass(frozen=True, slots=True)
class StaffEntry:
    """One active staff member of one department, as the admin room lists them."""

    telegram_user_id: int
    name: str
    role: str
    department_code: str
    department_name: str
    source: str


@dataclass(frozen=True, slots=True)
class StaffChange:
    """What an add or remove did.

    ``changed`` False: the person already had that role, nothing was written.
    ``config_role``: the role the TOML file gives this person in this
    department, which the next start puts back (see the module docstring);
    None when the file does not list them.
    """

    entry: StaffEntry
    changed: bool
    config_role: str | None


def may_manage_staff(actor: Actor) -> bool:
    """Whether the actor may add and remove staff: the centre's admins only."""
    return actor.is_centre and actor.role == MANAGE_ROLE


async def add_staff(
    desk: Desk,
    actor: Actor,
    telegram_user_id: int,
    department_code: str,
    role: str = "clerk",
    name: str = "",
) -> StaffChange:
    """Give a user a role in a department (a removed one is reactivated), audited."""
    _may_manage(actor)
    _check_user_id(telegram_user_id)
    if role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}",
            resident_message="角色只能是 clerk（经办人员）、supervisor（督查人员）"
            "或 admin（管理员）。",
        )
    name = name.strip()[:NAME_LENGTH]
    config_role = _config_role(desk, telegram_user_id, department_code)
    async with desk.database.transaction() as uow:
        department = await _department(uow, department_code)
        existing = await uow.directory.staff_record(telegram_user_id, department.id)
        if existing is not None and existing.active and existing.role == role:
            return StaffChange(_entry(existing, department), changed=False, config_role=config_role)
        if existing is not None and existing.id == actor.staff_id:
            # An admin demoting themselves could leave the room without one.
            raise InvalidInput(
                f"{actor.label} tried to change their own role",
                resident_message="不能更改您本人的角色，请由其他管理员操作。",
            )
        previous = existing.role if existing is not None and existing.active else None
        staff = await uow.directory.upsert_staff(
            telegram_user_id=telegram_user_id,
            department_id=department.id,
            role=role,
            # Added by id, without a name: keep the one the row has.
            name=name or (existing.name if existing is not None else ""),
            source=SOURCE,
        )
        uow.events.append(
            ticket_id=None,
            actor=actor.label,
            action="staff_added",
            detail={
                "telegram_user_id": telegram_user_id,
                "department": department.code,
                "role": role,
                "previous_role": previous,
            },
        )
        return StaffChange(_entry(staff, department), changed=True, config_role=config_role)


async def remove_staff(
    desk: Desk, actor: Actor, telegram_user_id: int, department_code: str
) -> StaffChange:
    """End a user's rights in a department at once (the row stays), audited."""
    _may_manage(actor)
    _check_user_id(telegram_user_id)
    config_role = _config_role(desk, telegram_user_id, department_code)
    async with desk.database.transaction() as uow:
        department = await _department(uow, department_code)
        staff = await uow.directory.staff_member(telegram_user_id, department.id)
        if staff is None:
            raise InvalidInput(
                f"user {telegram_user_id} is not active staff of {department.code}",
                resident_message=f"用户 {telegram_user_id} 不是{department.short_name}的工作人员。",
            )
        if staff.id == actor.staff_id:
            raise InvalidInput(
                f"{actor.label} tried to remove themselves",
                resident_message="不能移除您本人的权限，请由其他管理员操作。",
            )
        previous_source = staff.source
        # A config row becomes "admin" too: the room wrote it last. The next
        # start still restores a member the file lists (module docstring);
        # the caller warns when ``config_role`` is set.
        await uow.directory.deactivate_staff(staff, source=SOURCE)
        uow.events.append(
            ticket_id=None,
            actor=actor.label,
            action="staff_removed",
            detail={
                "telegram_user_id": telegram_user_id,
                "department": department.code,
                "role": staff.role,
                "previous_source": previous_source,
            },
        )
        return StaffChange(_entry(staff, department), changed=True, config_role=config_role)


async def list_staff(
    desk: Desk, actor: Actor, department_code: str | None = None
) -> list[StaffEntry]:
    """The active staff of one department, or of every active department."""
    if not actor.is_centre:
        raise NotAuthorised(f"{actor.label} may not list staff")
    async with desk.database.reading() as uow:
        department_id = None
        if department_code is not None:
            department_id = (await _department(uow, department_code)).id
        rows = await uow.directory.staff_in(department_id)
    return [_entry(staff, department) for staff, department in rows]


# ---------------------------------------------------------------------- helpers


def _may_manage(actor: Actor) -> None:
    if not may_manage_staff(actor):
        raise NotAuthorised(f"{actor.label} may not manage staff")


def _check_user_id(telegram_user_id: int) -> None:
    if not 0 < telegram_user_id <= MAX_USER_ID:
        raise InvalidInput(
            f"bad telegram user id {telegram_user_id}", resident_message="用户ID应为正整数。"
        )


def _config_role(desk: Desk, telegram_user_id: int, department_code: str) -> str | None:
    """The role the TOML file gives this user in this department (a start re-applies it)."""
    for member in desk.config.staff:
        if (member.telegram_user_id, member.department) == (telegram_user_id, department_code):
            return member.role
    return None


async def _department(uow: UnitOfWork, code: str) -> Department:
    """The active department with this code, or InvalidInput naming the valid codes."""
    department = await uow.directory.department_by_code(code)
    if department is None or not department.active:
        known = "、".join(d.code for d in await uow.directory.departments() if d.active)
        raise InvalidInput(
            f"unknown department {code!r}", resident_message=f"没有这个单位代码。可用：{known}"
        )
    return department


def _entry(staff: Staff, department: Department) -> StaffEntry:
    return StaffEntry(
        telegram_user_id=staff.telegram_user_id,
        name=staff.name,
        role=staff.role,
        department_code=department.code,
        department_name=department.short_name,
        source=staff.source,
    )
