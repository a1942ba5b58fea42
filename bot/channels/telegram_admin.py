"""Telegram's admin room: the centre's figures and look-ups, by command.

Only in the centre's admin room (``desk.admin_chat_id``) and only for centre
staff (supervisors and admins of the supervision office, by numeric user id):

- ``/stats``: received, closed (办结) and overdue per department, today and
  this week (desk time, the week from Monday).
- ``/overdue``: the tickets handled past their deadline, most overdue first.
- ``/find <编号或文字>``: a ticket by number, or the newest containing the text.
- ``/reveal <编号>``: the resident's contact unmasked, for centre admins only,
  always with an audit event. Department cards never show it.
- ``/staff add|remove|list``: who works for which department. Centre admins
  add (``/staff add <单位代码> [clerk|supervisor|admin]`` replying to the
  person's message, or ``/staff add <用户ID> <单位代码> [角色]``) and remove
  (``/staff remove <单位代码>`` replying, or ``/staff remove <用户ID> <单位代码>``),
  audited and effective at once; supervisors may ``/staff list [单位代码]``.
  A reply to a bot, an anonymous admin or a channel names nobody and is refused.

Anyone else in the room gets a short refusal; the commands do nothing in any
other chat. Every answer goes by the outbox, like every message the bot writes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from telegram import Message, Update, User
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bot.channels.telegram_staff import (
    CHANNEL_BOT_ID,
    GROUP_ANONYMOUS_BOT_ID,
    acting_staff,
    say_in_chat,
    topic_of,
)
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
from handlers.staff_admin import (
    StaffChange,
    StaffEntry,
    add_staff,
    list_staff,
    may_manage_staff,
    remove_staff,
)
from handlers.texts import STATUS_LABELS
from handlers.working_days import local_date_text
from nlp.ticket_numbers import is_valid_ticket_number
from storage.models import DESK_TZ

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

COMMANDS: Final = ("stats", "overdue", "find", "reveal", "staff")
REFUSED: Final = "仅投诉中心督查人员可以使用此命令。"
REVEAL_REFUSED: Final = "仅投诉中心管理员可以查看群众联系方式。"
FIND_USAGE: Final = "用法：/find 受理编号 或 /find 关键词"
REVEAL_USAGE: Final = "用法：/reveal 受理编号（9-10位数字）"
STAFF_USAGE: Final = (
    "用法：\n"
    "/staff add 单位代码 [角色]（回复此人的消息）\n"
    "/staff add 用户ID 单位代码 [角色]\n"
    "/staff remove 单位代码（回复此人的消息）\n"
    "/staff remove 用户ID 单位代码\n"
    "/staff list [单位代码]\n"
    "角色：clerk 经办人员（默认）、supervisor 督查人员、admin 管理员"
)
STAFF_REFUSED: Final = "仅投诉中心管理员可以增减工作人员。"
NOT_A_PERSON: Final = "不能将机器人、匿名管理员或频道设为工作人员，请回复本人发送的消息。"
ROLE_LABELS: Final = {"clerk": "经办人员", "supervisor": "督查人员", "admin": "管理员"}
# A Telegram user id: digits only, no sign (BIGINT holds 19 digits).
_USER_ID: Final = re.compile(r"^\d{1,19}$")
# Under Telegram's 4,096 characters, with room for the "more" line.
MESSAGE_LIMIT: Final = 4000
OVERDUE_SHOWN: Final = 20
FOUND_SHOWN: Final = 10
_SNIPPET: Final = 40


def add_admin_handlers(application: Application[Any, Any, Any, Any, Any, Any], desk: Desk) -> None:
    """Register the admin room's commands (COMMANDS); none without an admin room."""
    admin_chat_id = desk.config.desk.admin_chat_id
    if admin_chat_id is None:
        logger.info("No admin room configured: /stats, /overdue, /find, /reveal and /staff are off")
        return
    room = filters.Chat(chat_id=admin_chat_id)
    admin = _AdminHandlers(desk)
    application.add_handler(CommandHandler("stats", admin.stats, filters=room))
    application.add_handler(CommandHandler("overdue", admin.overdue, filters=room))
    application.add_handler(CommandHandler("find", admin.find, filters=room))
    application.add_handler(CommandHandler("reveal", admin.reveal, filters=room))
    application.add_handler(CommandHandler("staff", admin.staff, filters=room))


@dataclass(frozen=True, slots=True)
class StaffCommand:
    """/staff's arguments; ``user_id`` None means the person whose message was replied to."""

    verb: Literal["add", "remove", "list"]
    user_id: int | None = None
    department: str | None = None
    role: str = "clerk"


def parse_staff_command(args: Sequence[str]) -> StaffCommand | None:
    """/staff's arguments, or None for the usage text (roles and codes are checked later)."""
    verb, *rest = [a.strip() for a in args] or [""]
    verb = verb.lower()
    if verb == "list":
        if len(rest) > 1:
            return None
        return StaffCommand("list", department=rest[0] if rest else None)
    if verb not in ("add", "remove"):
        return None
    user_id = None
    if rest and _USER_ID.match(rest[0]):
        user_id, rest = int(rest[0]), rest[1:]
    if verb == "remove":
        return StaffCommand("remove", user_id, rest[0]) if len(rest) == 1 else None
    if len(rest) not in (1, 2):
        return None
    role = rest[1].lower() if len(rest) == 2 else "clerk"
    return StaffCommand("add", user_id, rest[0], role)


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


def staff_change_text(verb: Literal["add", "remove"], change: StaffChange) -> str:
    """/staff add and remove: what changed, and whether the config file will undo it."""
    entry = change.entry
    who = _who(entry)
    role = ROLE_LABELS.get(entry.role, entry.role)
    if verb == "remove":
        text = f"已移除{who}在{entry.department_name}的{role}权限，即时生效。"
    elif change.changed:
        text = f"已将{who}设为{entry.department_name}的{role}，即时生效。"
    else:
        text = f"{who}已是{entry.department_name}的{role}，无需变更。"
    config_role = change.config_role
    if config_role is not None and (verb == "remove" or config_role != entry.role):
        kept = ROLE_LABELS.get(config_role, config_role)
        text += (
            f"\n注意：配置文件中此人为{entry.department_name}的{kept}，下次重启将按配置文件恢复；"
            "如需长期生效，请同时修改配置文件。"
        )
    return text


def staff_list_text(department: str | None, entries: Sequence[StaffEntry]) -> str:
    """/staff list: one line per person, by department."""
    if not entries:
        return "该单位目前没有工作人员。" if department else "目前没有工作人员。"
    lines = [
        f"【工作人员】{entries[0].department_name if department else '全部单位'}：{len(entries)}人"
    ]
    for entry in entries:
        origin = "（配置文件）" if entry.source == "config" else ""
        lines.append(
            f"{entry.department_name}（{entry.department_code}）"
            f"{ROLE_LABELS.get(entry.role, entry.role)}：{_who(entry)}{origin}"
        )
    return _fit(lines, "（人数较多，其余从略，请按单位代码查看）")


def _who(entry: StaffEntry) -> str:
    """A staff member as the admin room names them: name and id, or the id alone."""
    return f"{entry.name or '用户'}（ID {entry.telegram_user_id}）"


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

    async def staff(self, update: Update, context: Context) -> None:
        """/staff add|remove|list: who works for which department, changed by centre admins."""
        actor = await self._actor(update)
        if actor is None:
            return
        command = parse_staff_command(context.args or ())
        if command is None:
            await self._tell(update, STAFF_USAGE)
            return
        try:
            await self._tell(update, await self._staff(update, actor, command))
        except NotAuthorised:
            logger.info("%s may not change staff", actor.label)
            await self._tell(update, STAFF_REFUSED)
        except DeskError as exc:
            logger.info("/staff %s refused: %s", command.verb, exc)
            await self._tell(update, exc.resident_message)

    async def _staff(self, update: Update, actor: Actor, command: StaffCommand) -> str:
        """The answer to a parsed /staff command (DeskErrors are the caller's)."""
        if command.verb == "list":
            found = await list_staff(self._desk, actor, command.department)
            return staff_list_text(command.department, found)
        if not may_manage_staff(actor):
            # Before looking at the reply: a supervisor learns nothing but the refusal.
            raise NotAuthorised(f"{actor.label} may not manage staff")
        if command.department is None:  # pragma: no cover - the parser sets it for these
            return STAFF_USAGE
        user_id, name = command.user_id, ""
        if user_id is None:
            person = replied_person(update.effective_message)
            if person is None:
                return NOT_A_PERSON if _replies(update.effective_message) else STAFF_USAGE
            user_id, name = person.id, person.full_name
        if user_id in (GROUP_ANONYMOUS_BOT_ID, CHANNEL_BOT_ID):
            return NOT_A_PERSON
        if command.verb == "add":
            change = await add_staff(
                self._desk, actor, user_id, command.department, command.role, name
            )
        else:
            change = await remove_staff(self._desk, actor, user_id, command.department)
        return staff_change_text(command.verb, change)

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


def _replies(message: Message | None) -> bool:
    """Whether the message is a reply to another; in a forum topic, not to the topic's start.

    Telegram sets ``reply_to_message`` on every message in a topic to the
    topic's creation message: that is no reply to a person.
    """
    if message is None or message.reply_to_message is None:
        return False
    return not (
        message.is_topic_message
        and message.reply_to_message.message_id == message.message_thread_id
    )


def replied_person(message: Message | None) -> User | None:
    """The person whose message this one replies to; None for no reply or no person.

    Bots, anonymous group admins and posts on behalf of a channel name nobody
    who can be held to account, so they are never made staff.
    """
    if message is None or not _replies(message):
        return None
    replied = message.reply_to_message
    user = replied.from_user if replied is not None else None
    if replied is None or user is None or replied.sender_chat is not None:
        return None
    if user.is_bot or user.id in (GROUP_ANONYMOUS_BOT_ID, CHANNEL_BOT_ID):
        return None
    return user
