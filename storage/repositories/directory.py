"""Departments, staff, citizens and their contacts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Citizen, Contact, Department, Staff, TicketFollower, utcnow
from storage.repositories.upsert import insert_if_absent


class DirectoryRepository:
    """Who is who: departments and staff from the config, citizens from their messages."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def departments(self) -> Sequence[Department]:
        """All departments, in id order."""
        result = await self._session.execute(select(Department).order_by(Department.id))
        return result.scalars().all()

    async def department(self, department_id: int) -> Department | None:
        """One department by id."""
        return await self._session.get(Department, department_id)

    async def department_by_code(self, code: str) -> Department | None:
        """One department by its config code."""
        result = await self._session.execute(select(Department).where(Department.code == code))
        return result.scalar_one_or_none()

    async def upsert_department(
        self,
        *,
        code: str,
        name: str,
        short_name: str,
        chat_id: int | None,
        thread_id: int | None,
        is_supervision: bool,
    ) -> Department:
        """Create or update a department from the config file.

        ``chat_id`` None keeps the group chat the department has (bound by an
        administrator's ``/bind``); a chat id replaces it.
        """
        department = await self.department_by_code(code)
        if department is None:
            department = Department(code=code)
            self._session.add(department)
        department.name = name
        department.short_name = short_name
        if chat_id is not None:
            # The file names the group; without one, a group bound with /bind stays.
            department.chat_id = chat_id
            department.thread_id = thread_id
        department.is_supervision = is_supervision
        department.active = True
        await self._session.flush()
        return department

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """A group became a supergroup: its departments follow it; how many moved."""
        result = await self._session.execute(
            update(Department)
            .where(Department.chat_id == old_chat_id)
            .values(chat_id=new_chat_id)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def department_by_chat(self, chat_id: int) -> Department | None:
        """The department whose group chat this is."""
        result = await self._session.execute(
            select(Department).where(Department.chat_id == chat_id, Department.active.is_(True))
        )
        return result.scalars().first()

    async def staff_by_id(self, staff_id: int) -> Staff | None:
        """A staff record by its id, active or not (a ticket's owner may have left)."""
        return await self._session.get(Staff, staff_id)

    async def staff_member(self, telegram_user_id: int, department_id: int) -> Staff | None:
        """The active staff record of this user in this department."""
        result = await self._session.execute(
            select(Staff).where(
                Staff.telegram_user_id == telegram_user_id,
                Staff.department_id == department_id,
                Staff.active.is_(True),
            )
        )
        return result.scalar_one_or_none()

    async def staff_of(self, source: str) -> Sequence[Staff]:
        """Every staff row, active or not, that came from ``source``."""
        result = await self._session.execute(select(Staff).where(Staff.source == source))
        return result.scalars().all()

    async def staff_record(self, telegram_user_id: int, department_id: int) -> Staff | None:
        """This user's staff row in this department, active or not."""
        result = await self._session.execute(
            select(Staff).where(
                Staff.telegram_user_id == telegram_user_id, Staff.department_id == department_id
            )
        )
        return result.scalar_one_or_none()

    async def staff_in(
        self, department_id: int | None = None
    ) -> Sequence[tuple[Staff, Department]]:
        """Active staff with their department (one department's, or of every active one).

        In department order, then by user id.
        """
        query = (
            select(Staff, Department)
            .join(Department, Department.id == Staff.department_id)
            .where(Staff.active.is_(True), Department.active.is_(True))
            .order_by(Department.id, Staff.telegram_user_id)
        )
        if department_id is not None:
            query = query.where(Staff.department_id == department_id)
        result = await self._session.execute(query)
        return [(staff, department) for staff, department in result.all()]

    async def deactivate_staff(self, staff: Staff, *, source: str) -> None:
        """End a staff member's rights; the row stays (tickets and events refer to it)."""
        staff.active = False
        staff.source = source
        await self._session.flush()

    async def upsert_staff(
        self, *, telegram_user_id: int, department_id: int, role: str, name: str, source: str
    ) -> Staff:
        """Create or update (and reactivate) a staff member's role in a department."""
        result = await self._session.execute(
            select(Staff).where(
                Staff.telegram_user_id == telegram_user_id, Staff.department_id == department_id
            )
        )
        staff = result.scalar_one_or_none()
        if staff is None:
            staff = Staff(telegram_user_id=telegram_user_id, department_id=department_id)
            self._session.add(staff)
        staff.role = role
        staff.name = name
        staff.source = source
        staff.active = True
        await self._session.flush()
        return staff

    async def lock_directory(self) -> None:
        """Serialise directory syncs of several workers starting at once.

        PostgreSQL: a transaction-scoped advisory lock. SQLite: the write
        transaction's BEGIN IMMEDIATE already serialises them.
        """
        if self._session.get_bind().dialect.name == "postgresql":
            await self._session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('complaint-desk:directory'))")
            )

    async def contact(self, channel: str, address: str) -> Contact | None:
        """The contact with this channel address, if known."""
        result = await self._session.execute(
            select(Contact).where(Contact.channel == channel, Contact.address == address)
        )
        return result.scalar_one_or_none()

    async def contact_by_id(self, contact_id: int) -> Contact | None:
        """One contact by id."""
        return await self._session.get(Contact, contact_id)

    async def mark_unreachable(self, channel: str, address: str) -> bool:
        """Flag the contact at this address as unreachable; False if no contact has it.

        Group chats and other non-citizen recipients have no contact row, hence the bool.
        """
        result = await self._session.execute(
            update(Contact)
            .where(Contact.channel == channel, Contact.address == address)
            .values(unreachable=True)
            .returning(Contact.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None

    async def mark_opted_out(self, channel: str, address: str) -> bool:
        """Flag the contact at this address as opted out; False if no contact has it.

        Set when the provider refuses a message because the resident opted out
        (SMS STOP); group chats and other non-citizen recipients have no contact row.
        """
        result = await self._session.execute(
            update(Contact)
            .where(Contact.channel == channel, Contact.address == address)
            .values(opted_out=True)
            .returning(Contact.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None

    async def follow(self, ticket_id: int, contact_id: int) -> bool:
        """Add a follower to a ticket; False if they already follow it."""
        added = await insert_if_absent(
            self._session,
            TicketFollower,
            {"ticket_id": ticket_id, "contact_id": contact_id, "created_at": utcnow()},
            ["ticket_id", "contact_id"],
        )
        return added is not None

    async def followers(self, ticket_id: int) -> Sequence[Contact]:
        """The contacts of residents whose complaints were merged into the ticket."""
        result = await self._session.execute(
            select(Contact)
            .join(TicketFollower, TicketFollower.contact_id == Contact.id)
            .where(TicketFollower.ticket_id == ticket_id)
            .order_by(TicketFollower.id)
        )
        return result.scalars().all()

    async def ensure_contact(self, channel: str, address: str) -> Contact:
        """The contact for this address, creating the citizen and contact on first sight."""
        existing = await self.contact(channel, address)
        if existing is not None:
            return existing
        citizen = Citizen(created_at=utcnow())
        self._session.add(citizen)
        await self._session.flush()
        await insert_if_absent(
            self._session,
            Contact,
            {
                "citizen_id": citizen.id,
                "channel": channel,
                "address": address,
                "opted_out": False,
                "unreachable": False,
                "created_at": utcnow(),
            },
            ["channel", "address"],
        )
        contact = await self.contact(channel, address)
        if contact is None:  # pragma: no cover - the insert or the winner's row exists
            raise LookupError(f"contact {channel}:{address} vanished after insert")
        return contact
