"""Telegram's admin room: the centre's figures and look-ups, by command.

Only in the centre's admin room (``desk.admin_chat_id``) and only for centre
staff (supervisors and admins of the supervision office, by numeric user id):

- ``/stats``: received, closed (办结) and overdue per department, today and
  this week (desk time, the week from Monday).
- ``/overdue``: the tickets handled past their deadline, most overdue first.
- ``/find <编号或文字>``: a ticket by number, or the newest containing the text.
- ``/reveal <编号>``: the resident's contact unmasked, for centre admins only,
  always with an audit event. Department cards never show it.

Anyone else in the room gets a short refusal; the commands do nothing in any
other chat. Every answer goes by the outbox, like every message the bot writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bot.channels.telegram_staff import acting_staff, say_in_chat, topic_of
from handlers.context import Desk
from handlers.errors import DeskError, NotAuthorised
from handlers.figures import (
    DepartmentFigures,
    OverdueTicket,
    TicketSummary,
    desk_figures,
    find_tickets,
    handle_reveal,
    overdue_tickets,
    start_of_day,
    start_of_week,
    total_of,
)
from handlers.messages import Actor
from handlers.texts import STATUS_LABELS
from handlers.working_days import local_date_text
from nlp.ticket_numbers import is_valid_ticket_number
from storage.models import DESK_TZ

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

COMMANDS: Final = ("stats", "overdue", "find", "reveal")
REFUSED: Final = "仅投诉中心督查人员可以使用此命令。"
REVEAL_REFUSED: Final = "仅投诉中心管理员可以查看群众联系方式。"
FIND_USAGE: Final = "用法：/find 受理编号 或 /find 关键词"
REVEAL_USAGE: Final = "用法：/reveal 受理编号（9-10位数字）"
# Under Telegram's 4,096 characters, with room for the "more" line.
MESSAGE_LIMIT: Final = 4000
OVERDUE_SHOWN: Final = 20
FOUND_SHOWN: Final = 10
_SNIPPET: Final = 40


def add_admin_handlers(application: Application[Any, Any, Any, Any, Any, Any], desk: Desk) -> None:
    """Register /stats, /overdue, /find and /reveal for the admin room (none without one)."""
    admin_chat_id = desk.config.desk.admin_chat_id
    if admin_chat_id is None:
        logger.info("No admin room configured: /stats, /overdue, /find and /reveal are off")
        return
    room = filters.Chat(chat_id=admin_chat_id)
    admin = _AdminHandlers(desk)
    application.add_handler(CommandHandler("stats", admin.stats, filters=room))
    application.add_handler(CommandHandler("overdue", admin.overdue, filters=room))
    application.add_handler(CommandHandler("find", admin.find, filters=room))
    application.add_handler(CommandHandler("reveal", admin.reveal, filters=room))


# ---------------------------------------------------------------------- texts


def stats_text(
    now: datetime, today: Sequence[DepartmentFigures], week: Sequence[DepartmentFigures]
) -> str:
    """/stats: one line per department, today's and this week's counts side by side."""
    stamp = now.astimezone(DESK_TZ).strftime("%H:%M")
    lines = [
        f"【效能统计】{local_date_text(now)} {stamp}",
        "单位：今日 收/结｜本周 收/结｜在办/超期",
    ]
    by_day = {(f.code, f.name): f for f in today}
    by_week = {(f.code, f.name): f for f in week}
    # Two queries, so a row may be in one list only (a ticket registered in
    # between, a retired department with numbers this week but not today).
    rows = [(by_day.get(key), by_week.get(key), key) for key in {**by_day, **by_week}]
    rows.append((total_of(today), total_of(week), (None, "合计")))
    for day, this_week, key in rows:
        # Open and overdue are "now" figures: the same in either list.
        current = this_week if this_week is not None else by_day[key]
        lines.append(
            f"{current.name}：{_received_closed(day)}｜{_received_closed(this_week)}｜"
            f"{current.open}/{current.overdue}"
        )
    return _fit(lines, "（单位较多，其余从略）")


def _received_closed(figures: DepartmentFigures | None) -> str:
    """收/结 of one period."""
    return "0/0" if figures is None else f"{figures.received}/{figures.closed}"


def overdue_text(tickets: Sequence[OverdueTicket], shown: int) -> str:
    """/overdue: the most overdue first; says so when there are more than ``shown``."""
    if not tickets:
        return "目前没有超期工单。"
    lines = ["【超期工单】"]
    for t in tickets[:shown]:
        status = STATUS_LABELS.get(t.status, t.status)
        lines.append(
            f"{t.number} {t.department or '未分派'} 时限{local_date_text(t.deadline_at)} "
            f"超期{t.days_overdue}天 {status}"
        )
    if len(tickets) > shown:
        lines.append(f"仅列出超期最久的{shown}件，各单位超期数见 /stats。")
    return _fit(lines, "（其余从略，各单位超期数见 /stats）")


def found_text(query: str, found: Sequence[TicketSummary]) -> str:
    """/find: one block per ticket, the text shortened."""
    if not found:
        return f"未找到与“{query[:_SNIPPET]}”相关的工单。"
    lines = [f"【查找】“{query[:_SNIPPET]}”：{len(found)}件"]
    for t in found:
        due = f"，时限{local_date_text(t.deadline_at)}" if t.deadline_at else ""
        text = t.text if len(t.text) <= _SNIPPET else t.text[: _SNIPPET - 1] + "…"
        lines.append(
            f"{t.number} {STATUS_LABELS.get(t.status, t.status)}，"
            f"{t.department or '未分派'}，登记{local_date_text(t.created_at)}{due}\n　{text}"
        )
    return _fit(lines, "（其余从略，请缩小关键词）")


def _fit(lines: list[str], more: str) -> str:
    """Whole lines up to MESSAGE_LIMIT; the rest replaced by ``more``."""
    kept: list[str] = []
    size = len(more)
    for line in lines:
        size += len(line) + 1
        if size > MESSAGE_LIMIT:
            return "\n".join([*kept, more])
        kept.append(line)
    return "\n".join(kept)


# ------------------------------------------------------------------- handlers


class _AdminHandlers:
    """The admin room's commands, bound to the desk."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk

    async def stats(self, update: Update, context: Context) -> None:
        """/stats: today's and this week's figures per department."""
        if await self._actor(update) is None:
            return
        now = self._desk.clock()
        today = await desk_figures(self._desk, start_of_day(now))
        week = await desk_figures(self._desk, start_of_week(now))
        await self._tell(update, stats_text(now, today, week))

    async def overdue(self, update: Update, context: Context) -> None:
        """/overdue: the tickets past their deadline, most overdue first."""
        if await self._actor(update) is None:
            return
        # One more than shown tells whether there are more, without a second query.
        tickets = await overdue_tickets(self._desk, limit=OVERDUE_SHOWN + 1)
        await self._tell(update, overdue_text(tickets, OVERDUE_SHOWN))

    async def find(self, update: Update, context: Context) -> None:
        """/find <编号或文字>: that ticket, or the newest whose text contains the words."""
        actor = await self._actor(update)
        if actor is None:
            return
        query = " ".join(context.args or ()).strip()
        if not query:
            await self._tell(update, FIND_USAGE)
            return
        found = await find_tickets(self._desk, query, limit=FOUND_SHOWN, viewer=actor)
        await self._tell(update, found_text(query, found))

    async def reveal(self, update: Update, context: Context) -> None:
        """/reveal <编号>: the resident's contact, to centre admins only, audited."""
        actor = await self._actor(update)
        user = update.effective_user
        if actor is None or user is None:
            return
        number = " ".join(context.args or ()).strip()
        if not is_valid_ticket_number(number):
            await self._tell(update, REVEAL_USAGE)
            return
        try:
            # The answer is queued by handle_reveal itself, with the audit event.
            await handle_reveal(self._desk, number, actor, user.id, thread_id=topic_of(update))
        except NotAuthorised:
            logger.info("User %s may not reveal contacts", user.id)
            await self._tell(update, REVEAL_REFUSED)
        except DeskError as exc:
            logger.info("Reveal of %s refused: %s", number, exc)
            await self._tell(update, exc.resident_message)

    # ------------------------------------------------------------------ helpers

    async def _actor(self, update: Update) -> Actor | None:
        """The centre staff member giving the command; anyone else is refused and gets None."""
        actor = await acting_staff(self._desk, update)
        if actor is None:
            await self._tell(update, REFUSED)
        return actor

    async def _tell(self, update: Update, body: str) -> None:
        """Queue the answer to the admin room (and topic) the command came from."""
        chat = update.effective_chat
        if chat is None:  # pragma: no cover - the room filter only passes chats
            return
        await say_in_chat(self._desk, chat.id, topic_of(update), body, purpose="admin")
