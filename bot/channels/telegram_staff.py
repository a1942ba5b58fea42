"""Telegram's department-group side: staff act on ticket cards by button and by reply.

A department's group chat receives the ticket card (转办单, see
``handlers.cards``), whose buttons (callback data ``t:<number>:<action>``)
are the ones that department may press at the ticket's status; the card is
edited in place after every change. Here:

- 签收 claims the ticket at once; the tap is answered "已签收".
- 回复, 办结, 退单 and 申请延期 need text: the bot posts a prompt (``【办结】受理
  编号 N：请回复本消息…``) and the staff member's reply to it becomes the
  interim reply, the result, the reason, or the days and reason of the
  extension request (``5 需协调施工单位``), which goes to the centre.
  The prompt is a plain outbox message, not a ForceReply: outbox buttons are
  inline keyboards only. Privacy mode still delivers replies to the bot's own
  messages, so a reply is all it takes.
- 转办 posts a keyboard of the other departments (``x:<number>:<code>``); a tap
  transfers the ticket and the new department's group gets the card.
- A reply to the card itself is an interim reply (答复) to the resident.

Rights come from ``staff_in_chat`` (numeric user id and the chat, never a
username); anonymous group admins, posts on behalf of a channel and
channels themselves are refused, as are strangers. Every message the bot
writes to the group goes by the outbox; only the answer to a tap (which
is not a message) is a direct Bot API call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from telegram import CallbackQuery, Update
from telegram.constants import ChatType
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from handlers.actors import staff_in_chat
from handlers.context import Desk
from handlers.errors import DeskError, InvalidInput, NotAuthorised, TicketNotFound
from handlers.messages import Actor
from handlers.notify import Buttons
from handlers.ticket_actions import (
    authorise,
    handle_claim,
    handle_reply,
    handle_request_extension,
    handle_resolve,
    handle_return,
    handle_transfer,
)
from handlers.workflow import Action, next_status
from storage.models import Ticket

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

CARD_BUTTON: Final = re.compile(r"^t:(\d{9,10}):(claim|reply|resolve|return|transfer|extend)$")
TRANSFER_BUTTON: Final = re.compile(r"^x:(\d{9,10}):([a-z][a-z0-9_]{1,39})$")

# Telegram's stand-ins: the sender of an anonymous admin's message and of a
# message posted on behalf of a channel. Neither is a person we can hold to account.
GROUP_ANONYMOUS_BOT_ID: Final = 1087968824
CHANNEL_BOT_ID: Final = 136817688

REFUSED: Final = "您无权处理此工单"

# A card button's action word, and the use case it stands for.
_BUTTON_ACTIONS: Final = {
    "claim": Action.CLAIM,
    "reply": Action.REPLY,
    "resolve": Action.RESOLVE,
    "return": Action.RETURN,
    "transfer": Action.TRANSFER,
    "extend": Action.REQUEST_EXTENSION,
}
# The text an action needs, and how its prompt names it.
_PROMPTS: Final = {
    Action.REPLY: ("回复", "答复群众的内容"),
    Action.RESOLVE: ("办结", "办理结果"),
    Action.RETURN: ("退单", "退单理由"),
    Action.REQUEST_EXTENSION: ("申请延期", "延长的工作日天数和理由，如：5 需协调施工单位"),
}
_PROMPT_ACTIONS: Final = {label: action for action, (label, _) in _PROMPTS.items()}
# Anchored on the prompt's fixed tail, so the admin room's "【退单】受理编号 N，理由…"
# notice is never mistaken for a prompt.
_PROMPT_TEXT: Final = re.compile(r"^【(回复|办结|退单|申请延期)】受理编号 (\d{9,10})：请回复本消息")
# "5 理由", "5天，理由", "5个工作日：理由"
_EXTENSION_TEXT: Final = re.compile(
    r"^\s*(\d{1,3})\s*(?:个工作日|个?工作日|天|日)?[\s,，:：、]*(.*)$", re.S
)
# Every department notice about one ticket (texts.department_notice and the
# urge/reopen notices); searched, not anchored: an unbound department's
# notice starts with a line saying it was redirected.
_CARD_TEXT: Final = re.compile(r"【(?:转办单|协办单|重新办理|催办)】受理编号 (\d{9,10})")
_GROUPS: Final = (ChatType.GROUP, ChatType.SUPERGROUP)
_BUTTONS_PER_ROW: Final = 2


def add_staff_handlers(application: Application[Any, Any, Any, Any, Any, Any], desk: Desk) -> None:
    """Register the department-group handlers (buttons on cards, replies to the bot)."""
    staff = _StaffHandlers(desk)
    application.add_handler(CallbackQueryHandler(staff.card_button, pattern=CARD_BUTTON))
    application.add_handler(CallbackQueryHandler(staff.transfer_button, pattern=TRANSFER_BUTTON))
    application.add_handler(
        MessageHandler(
            filters.ChatType.GROUPS & filters.TEXT & ~filters.COMMAND & filters.REPLY,
            staff.reply_to_bot,
        )
    )


def prompt_text(action: Action, number: str) -> str:
    """The prompt whose reply carries the text an action needs (办理结果, 退单理由)."""
    label, wanted = _PROMPTS[action]
    return f"【{label}】受理编号 {number}：请回复本消息填写{wanted}。"


def parse_bot_message(text: str) -> tuple[Action, str] | None:
    """What a reply to this bot message means: (action, ticket number), or None."""
    if prompt := _PROMPT_TEXT.match(text):
        return _PROMPT_ACTIONS[prompt.group(1)], prompt.group(2)
    if card := _CARD_TEXT.search(text):
        return Action.REPLY, card.group(1)
    return None


def parse_extension(text: str) -> tuple[int, str]:
    """ "5 需协调施工单位" -> (5, "需协调施工单位"); InvalidInput without a leading number."""
    found = _EXTENSION_TEXT.match(text)
    if found is None:
        raise InvalidInput(
            f"extension request {text[:40]!r} does not start with a number of days",
            "请先写延长的工作日天数，再写理由，如：5 需协调施工单位",
        )
    return int(found.group(1)), found.group(2).strip()


def topic_of(update: Update) -> int | None:
    """The forum topic an update came from, where the bot answers; else the main thread.

    Outside forums ``message_thread_id`` names a reply thread, which sendMessage
    would refuse. A card too old for Telegram to show in a callback has no
    message: the answer goes to the main thread.
    """
    message = update.effective_message
    return message.message_thread_id if message and message.is_topic_message else None


async def say_in_chat(
    desk: Desk,
    chat_id: int,
    thread_id: int | None,
    body: str,
    *,
    purpose: str,
    buttons: Buttons | None = None,
) -> None:
    """Queue a message to a chat (and topic): by the outbox, like every other message."""
    async with desk.database.transaction() as uow:
        await uow.outbox.enqueue(
            channel="telegram",
            recipient=str(chat_id),
            thread_id=thread_id,
            body=body,
            purpose=purpose,
            buttons=buttons,
        )
    desk.on_outbox()


async def acting_staff(desk: Desk, update: Update) -> Actor | None:
    """The registered staff member behind an update, or None for anyone to refuse.

    Rights come from ``staff_in_chat``: the chat names the department (the
    admin room, the centre). Anonymous group admins, channel posts and bots
    are refused whatever the chat: 首问负责制 needs a person to hold to account.
    """
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return None
    # A button press carries the bot's own message; only a sent message has a sender_chat.
    sent = update.effective_message if update.callback_query is None else None
    anonymous = user.id in (GROUP_ANONYMOUS_BOT_ID, CHANNEL_BOT_ID) or user.is_bot
    if anonymous or (sent is not None and sent.sender_chat is not None):
        return None
    try:
        return await staff_in_chat(desk, user.id, chat.id)
    except NotAuthorised:
        logger.info("User %s has no role in chat %s", user.id, chat.id)
        return None


async def tapped(
    update: Update,
    pattern: re.Pattern[str],
    actor_of: Callable[[Update], Awaitable[Actor | None]],
) -> tuple[CallbackQuery, re.Match[str], Actor] | None:
    """A button press matching ``pattern`` by someone who may act; others are refused here."""
    query = update.callback_query
    found = pattern.match(query.data or "") if query else None
    if query is None or found is None:
        return None
    actor = await actor_of(update)
    if actor is None:
        await query.answer(REFUSED, show_alert=True)
        return None
    return query, found, actor


class _StaffHandlers:
    """The handlers, bound to the desk they act on."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk

    async def card_button(self, update: Update, context: Context) -> None:
        """A card button: 签收 at once; 办结/退单 ask for text; 转办 lists the departments."""
        pressed = await tapped(update, CARD_BUTTON, self._actor)
        if pressed is None:
            return
        query, found, actor = pressed
        number, action = found.group(1), _BUTTON_ACTIONS[found.group(2)]
        try:
            answer = await self._card_action(update, actor, number, action)
        except DeskError as exc:
            logger.info("Card button %s on %s refused: %s", action, number, exc)
            await query.answer(exc.resident_message, show_alert=True)
            return
        await query.answer(answer)

    async def _card_action(self, update: Update, actor: Actor, number: str, action: Action) -> str:
        """Do what the button says; returns the answer to the tap."""
        chat_id, thread_id = _place(update)
        if action is Action.CLAIM:
            await handle_claim(self._desk, number, actor)
            return "已签收"
        # Checked now, so nobody types a result the ticket cannot take.
        ticket = await self._allowed(number, actor, action)
        if action is Action.TRANSFER:
            buttons = await self._department_buttons(number, ticket)
            await self._tell(
                chat_id, thread_id, f"【转办】受理编号 {number}：请选择转交的部门。", buttons
            )
            return "请选择转交的部门"
        await self._tell(chat_id, thread_id, prompt_text(action, number))
        return f"请回复提示消息填写{_PROMPTS[action][1]}"

    async def transfer_button(self, update: Update, context: Context) -> None:
        """A department on the 转办 keyboard: the ticket moves and that group gets the card."""
        pressed = await tapped(update, TRANSFER_BUTTON, self._actor)
        if pressed is None:
            return
        query, found, actor = pressed
        number, code = found.groups()
        try:
            await handle_transfer(self._desk, number, actor, code)
        except DeskError as exc:
            logger.info("Transfer of %s to %s refused: %s", number, code, exc)
            await query.answer(exc.resident_message, show_alert=True)
            return
        department = self._desk.config.department_by_code.get(code)
        await query.answer(f"已转办至{department.short_name if department else code}")

    async def reply_to_bot(self, update: Update, context: Context) -> None:
        """A reply to a card or prompt: an interim reply, the 办理结果, or the 退单理由."""
        message = update.message
        if message is None or message.text is None or message.forum_topic_created:
            return
        replied = message.reply_to_message
        # In a forum every message "replies" to the topic's creation: not to us.
        if replied is None or replied.forum_topic_created or replied.from_user is None:
            return
        if replied.from_user.id != context.bot.id:
            return
        parsed = parse_bot_message(replied.text or "")
        if parsed is None:
            return
        action, number = parsed
        chat_id, thread_id = _place(update)
        actor = await self._actor(update)
        if actor is None:
            await self._tell(chat_id, thread_id, REFUSED)
            return
        try:
            done = await self._text_action(actor, number, action, message.text)
        except DeskError as exc:
            logger.info("Reply for %s on %s refused: %s", action, number, exc)
            await self._tell(chat_id, thread_id, exc.resident_message)
            return
        await self._tell(chat_id, thread_id, done)

    async def _text_action(self, actor: Actor, number: str, action: Action, text: str) -> str:
        """Do the action with the staff member's text; returns the group's confirmation."""
        desk = self._desk
        if action is Action.RESOLVE:
            await handle_resolve(desk, number, actor, text)
            return f"受理编号 {number} 已办结，办理结果已告知群众。"
        if action is Action.RETURN:
            await handle_return(desk, number, actor, text)
            return f"受理编号 {number} 已退单，由中心重新分派。"
        if action is Action.REQUEST_EXTENSION:
            days, reason = parse_extension(text)
            await handle_request_extension(desk, number, actor, days, reason)
            return f"受理编号 {number} 的延期申请（{days}个工作日）已提交投诉中心审批。"
        await handle_reply(desk, number, actor, text)
        return f"受理编号 {number} 的答复已发送给群众。"

    # ------------------------------------------------------------------ helpers

    async def _actor(self, update: Update) -> Actor | None:
        """The staff member acting in this group, or None for anyone we must refuse."""
        chat = update.effective_chat
        if chat is None or chat.type not in _GROUPS:
            return None  # channels and private chats have no department
        return await acting_staff(self._desk, update)

    async def _allowed(self, number: str, actor: Actor, action: Action) -> Ticket:
        """The ticket, if ``actor`` may do ``action`` to it now; the action's own errors if not."""
        async with self._desk.database.reading() as uow:
            ticket = await uow.tickets.by_number(number)
        if ticket is None:
            raise TicketNotFound(number)
        authorise(actor, action, ticket)
        next_status(number, ticket.status, action)
        return ticket

    async def _department_buttons(self, number: str, ticket: Ticket) -> list[list[dict[str, str]]]:
        """The departments the ticket can go to: active, not its own, not the centre.

        Handing a ticket back to the centre is 退单, with a reason.
        """
        async with self._desk.database.reading() as uow:
            departments = await uow.directory.departments()
        keys = [
            {"text": d.short_name, "data": f"x:{number}:{d.code}"}
            for d in departments
            if d.active and not d.is_supervision and d.id != ticket.department_id
        ]
        return [keys[i : i + _BUTTONS_PER_ROW] for i in range(0, len(keys), _BUTTONS_PER_ROW)]

    async def _tell(
        self, chat_id: int, thread_id: int | None, body: str, buttons: Buttons | None = None
    ) -> None:
        """Queue a message to the group (and topic) the staff member acted in."""
        await say_in_chat(self._desk, chat_id, thread_id, body, purpose="staff", buttons=buttons)


def _place(update: Update) -> tuple[int, int | None]:
    """The chat and forum topic the update came from, where the bot answers.

    Only called once ``_actor`` has found a staff member, so there is a chat.
    """
    chat = update.effective_chat
    if chat is None:  # pragma: no cover - _actor refuses updates without a chat
        raise NotAuthorised("an update without a chat")
    return chat.id, topic_of(update)
