"""Telegram's admin room: the centre routes a triage ticket (待分派, 退单) by button.

The 【待分派】 notice carries a button per suggested department
(``g:<number>:<code>``) and 其他单位 (``o:<number>``); the buttons work the
same for a returned (退单) ticket, which skips 受理. Here:

- A department button 受理s the ticket if it is still only registered, then
  转办s it to that department, whose group gets the card; the tap is answered
  "已分派至<部门>".
- 其他单位 posts a keyboard of every active department but the supervision
  office (``g:`` buttons again) to the admin room, by the outbox.
- 同意延期 / 不同意 on a 【延期申请】 notice (``e:<number>:<days>:y|n``)
  decides a department's request for more working days.

Only centre staff (supervisors and admins of the supervision office, by
numeric user id) in the admin room may tap; anyone else gets an alert and
nothing changes. A ticket that is no longer in triage gets the use case's
polite refusal. A suggestion button also confirms its category: a category
other than routing's guess becomes the ticket's, kept as a labelled example
for retraining; 其他单位 leaves the category as it was.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot.channels.telegram_staff import acting_staff, say_in_chat, tapped, topic_of
from handlers.context import Desk
from handlers.errors import DeskError, IllegalTransition, TicketNotFound
from handlers.messages import Actor
from handlers.notify import Buttons
from handlers.texts import STATUS_LABELS
from handlers.ticket_actions import handle_accept, handle_assign, handle_decide_extension
from handlers.workflow import TRIAGE, Action, Status
from storage.models import Ticket

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

# At most 2 + 10 + 1 + 40 = 53 bytes: department codes are short ASCII.
# With the suggested category's index in the config, when the button suggested one.
ASSIGN_BUTTON: Final = re.compile(r"^g:(\d{9,10}):([a-z][a-z0-9_]{1,39})(?::(\d{1,3}))?$")
OTHER_BUTTON: Final = re.compile(r"^o:(\d{9,10})$")
# 同意延期 / 不同意 on a 【延期申请】 notice: the days requested, then y or n.
EXTENSION_BUTTON: Final = re.compile(r"^e:(\d{9,10}):(\d{1,2}):([yn])$")
_BUTTONS_PER_ROW: Final = 2


def add_triage_handlers(application: Application[Any, Any, Any, Any, Any, Any], desk: Desk) -> None:
    """Register the admin room's triage buttons (none without an admin room)."""
    if desk.config.desk.admin_chat_id is None:
        logger.info("No admin room configured: triage buttons are off")
        return
    triage = _TriageHandlers(desk)
    application.add_handler(CallbackQueryHandler(triage.assign_button, pattern=ASSIGN_BUTTON))
    application.add_handler(CallbackQueryHandler(triage.other_button, pattern=OTHER_BUTTON))
    application.add_handler(CallbackQueryHandler(triage.extension_button, pattern=EXTENSION_BUTTON))


def assign_prompt(number: str) -> str:
    """The text above the 其他单位 keyboard."""
    return f"【分派】受理编号 {number}：请选择承办单位。"


class _TriageHandlers:
    """The handlers, bound to the desk they act on."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk

    async def assign_button(self, update: Update, context: Context) -> None:
        """A department button: the ticket is 受理 and 转办 there; the tap says where."""
        pressed = await tapped(update, ASSIGN_BUTTON, self._actor)
        if pressed is None:
            return
        query, found, actor = pressed
        number, code, index = found.groups()
        category = self._suggested_category(code, index)
        try:
            ticket = await self._ticket(number)
            if ticket.status == Status.RECEIVED:
                await handle_accept(self._desk, number, actor)
            await handle_assign(self._desk, number, actor, code, corrected_category=category)
        except DeskError as exc:
            logger.info("Assigning %s to %s refused: %s", number, code, exc)
            await query.answer(exc.resident_message, show_alert=True)
            return
        department = self._desk.config.department_by_code.get(code)
        await query.answer(f"已分派至{department.short_name if department else code}")

    async def other_button(self, update: Update, context: Context) -> None:
        """其他单位: the admin room gets a keyboard of every department to choose from."""
        pressed = await tapped(update, OTHER_BUTTON, self._actor)
        if pressed is None:
            return
        query, found, _ = pressed
        number = found.group(1)
        try:
            ticket = await self._ticket(number)
            if Status(ticket.status) not in TRIAGE:
                label = STATUS_LABELS[Status(ticket.status)]
                raise IllegalTransition(number, ticket.status, Action.ASSIGN.value, label)
        except DeskError as exc:
            logger.info("Department list for %s refused: %s", number, exc)
            await query.answer(exc.resident_message, show_alert=True)
            return
        await self._tell(update, assign_prompt(number), await self._keyboard(number, ticket))
        await query.answer("请选择承办单位")

    async def extension_button(self, update: Update, context: Context) -> None:
        """同意延期 / 不同意: the centre decides a department's 申请延期."""
        pressed = await tapped(update, EXTENSION_BUTTON, self._actor)
        if pressed is None:
            return
        query, found, actor = pressed
        number, days, verdict = found.group(1), int(found.group(2)), found.group(3)
        try:
            await handle_decide_extension(self._desk, number, actor, days, approve=verdict == "y")
        except DeskError as exc:
            logger.info("Extension decision on %s refused: %s", number, exc)
            await query.answer(exc.resident_message, show_alert=True)
            return
        await query.answer("已同意延期" if verdict == "y" else "已答复不同意延期")

    # ------------------------------------------------------------------ helpers

    async def _actor(self, update: Update) -> Actor | None:
        """The centre staff member tapping in the admin room, or None for anyone else."""
        chat = update.effective_chat
        if chat is None or chat.id != self._desk.config.desk.admin_chat_id:
            return None
        return await acting_staff(self._desk, update)

    def _suggested_category(self, code: str, index: str | None) -> str | None:
        """The category a suggestion button confirmed, if it still names one of ``code``'s."""
        categories = self._desk.config.categories
        if index is None or int(index) >= len(categories):
            return None
        category = categories[int(index)]
        return category.code if category.department == code else None

    async def _ticket(self, number: str) -> Ticket:
        async with self._desk.database.reading() as uow:
            ticket = await uow.tickets.by_number(number)
        if ticket is None:
            raise TicketNotFound(number)
        return ticket

    async def _keyboard(self, number: str, ticket: Ticket) -> Buttons:
        """Active departments, less the centre and any the complaint is about."""
        async with self._desk.database.reading() as uow:
            departments = await uow.directory.departments()
        keys = [
            {"text": d.short_name, "data": f"g:{number}:{d.code}"}
            for d in departments
            if d.active and not d.is_supervision and d.id not in ticket.accused_department_ids
        ]
        return [keys[i : i + _BUTTONS_PER_ROW] for i in range(0, len(keys), _BUTTONS_PER_ROW)]

    async def _tell(self, update: Update, body: str, buttons: Buttons) -> None:
        """Queue a message to the admin room (and the forum topic tapped in)."""
        chat = update.effective_chat
        assert chat is not None  # _actor let only the admin room through
        await say_in_chat(
            self._desk, chat.id, topic_of(update), body, purpose="admin", buttons=buttons
        )
