"""Telegram's inbound half: every update stored first, then handled by python-telegram-bot.

python-telegram-bot runs inside our own aiohttp server (``updater(None)``).
An update reaches us by webhook (``TELEGRAM_WEBHOOK_URL``: ``setWebhook`` with
a secret token that Telegram sends back on every call and we compare in
constant time) or, for development, by our own ``getUpdates`` loop. Either
way the update is committed to ``inbound_messages`` (channel
``telegram-update``, keyed on ``update_id``, through the group commit) before
it is acknowledged: the webhook answers 200 only after the commit, and the
polling loop moves its offset past an update only after it. A crash loses
nothing; a redelivered update finds its row and is not handled twice.

Stored updates are handled by the intake worker, in order, through
``Application.process_update``. What a resident writes in a private chat goes
through the same channel-neutral path as an SMS (``handlers.inbound``): plain
text is a complaint (or 查询/评价/退订), and the answer goes by the outbox.
The commands ``/start``, ``/stop``, ``/my``, ``/status <编号>`` and ``/help``
are the Telegram spellings of the same requests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
from typing import Any

from aiohttp import web
from telegram import CallbackQuery, Chat, Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.channels.telegram_admin import add_admin_handlers
from bot.channels.telegram_staff import add_staff_handlers, say_in_chat, topic_of
from bot.channels.telegram_triage import add_triage_handlers
from bot.intake_worker import IntakeWorker
from handlers import texts
from handlers.context import Desk
from handlers.errors import InvalidInput, NotAuthorised
from handlers.group_binding import bind_group, bot_left_group, chat_migrated
from handlers.inbound import handle_incoming
from handlers.messages import Attachment, IncomingMessage, IntakeResult
from handlers.resident import open_details, opt_in
from storage.group_commit import InboundBatchWriter, InboundRecord

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
# Raw updates are stored under a channel of their own: the intake worker hands
# them to python-telegram-bot, never to the complaint path directly.
UPDATE_CHANNEL = "telegram-update"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# What the desk handles; Telegram sends nothing else (less traffic, fewer surprises).
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]

Context = ContextTypes.DEFAULT_TYPE
# The rating keyboard under a resolved ticket's result (handlers.ticket_actions).
RATING_BUTTON = re.compile(r"^r:(\d{9,10}):([123])$")
# 补充材料 under the service card, and a ticket in the /my list (tap: its timeline).
DETAILS_BUTTON = re.compile(r"^d:(\d{9,10})$")
STATUS_BUTTON = re.compile(r"^s:(\d{9,10})$")


def webhook_secret(token: str) -> str:
    """The secret token for ``setWebhook``, derived from the bot token.

    Derived, not random, so that every ``serve`` process of one desk expects
    the same secret; unguessable without the bot token. 43 characters of
    ``[A-Za-z0-9_-]``, as Telegram requires.
    """
    digest = hmac.new(token.encode(), b"complaint-desk telegram webhook", hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def build_application(
    token: str, *, request: BaseRequest | None = None, base_url: str | None = None
) -> Application[Any, Any, Any, Any, Any, Any]:
    """python-telegram-bot's Application without its own updater (we feed it)."""
    builder = Application.builder().token(token).updater(None)
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    if base_url is not None:
        builder = builder.base_url(base_url)
    return builder.build()


class TelegramFrontDoor:
    """Stores updates, then handles them with the Application's handlers."""

    def __init__(
        self,
        desk: Desk,
        application: Application[Any, Any, Any, Any, Any, Any],
        *,
        secret_token: str | None,
    ) -> None:
        self._desk = desk
        self.application = application
        self._secret = secret_token
        self._bound: tuple[InboundBatchWriter, IntakeWorker] | None = None
        # Updates whose handler raised, by update_id (see ``process_stored``).
        self._failed: dict[int, BaseException] = {}
        self._add_handlers()
        application.add_error_handler(self._remember_failure)

    def bind(self, writer: InboundBatchWriter, worker: IntakeWorker) -> None:
        """Attach the group commit and the worker (built after the routes)."""
        self._bound = (writer, worker)

    # ------------------------------------------------------------------ intake

    async def webhook(self, request: web.Request) -> web.Response:
        """Telegram's POST: secret checked, update stored, then 200."""
        given = request.headers.get(SECRET_HEADER, "")
        if self._secret is None or not hmac.compare_digest(given.encode(), self._secret.encode()):
            logger.warning("Telegram webhook with a missing or wrong secret token refused")
            raise web.HTTPForbidden(text="wrong secret token")
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text="the body is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise web.HTTPBadRequest(text="not a Telegram update (no update_id)")
        await self.store(data)
        return web.Response(status=200)

    async def store(self, data: dict[str, Any]) -> None:
        """Commit one update (once per update_id) and queue it for handling."""
        if self._bound is None:
            raise web.HTTPServiceUnavailable(text="the desk is starting")
        writer, worker = self._bound
        update_id = str(data["update_id"])
        recorded = await writer.record(
            InboundRecord(UPDATE_CHANNEL, update_id, _sender_of(data), "", data)
        )
        if recorded.new:
            worker.submit(
                recorded.inbound_id, IncomingMessage(UPDATE_CHANNEL, update_id, "", "", data)
            )

    async def poll(self, stop: asyncio.Event, *, wait_seconds: int = 30) -> None:
        """Development mode: long-poll ``getUpdates``, storing each update before moving on."""
        bot = self.application.bot
        await bot.delete_webhook()
        offset: int | None = None
        while not stop.is_set():
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=wait_seconds, allowed_updates=ALLOWED_UPDATES
                )
            except TelegramError as exc:
                logger.warning("getUpdates failed (%s); polling again shortly", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5)
                continue
            for update in updates:
                await self.store(update.to_dict())
                # Only a stored update is confirmed to Telegram (by the next offset).
                offset = update.update_id + 1

    async def process_stored(
        self, desk: Desk, inbound_id: int, message: IncomingMessage
    ) -> IntakeResult:
        """Handle a stored update once; the intake worker and the start-up sweep call this."""
        async with desk.database.reading() as uow:
            row = await uow.inbound.get(inbound_id)
        if row is None or row.reply_text is not None:
            return IntakeResult(reply="", ticket_number=None, duplicate=True)
        try:
            update = Update.de_json(row.raw_payload, self.application.bot)
        except (TypeError, ValueError, KeyError):
            # Telegram sent something this library cannot read: retrying will
            # not change that. Kept in the table for whoever investigates.
            logger.exception(
                "stored Telegram update %s is unreadable; skipped", message.external_id
            )
        else:
            await self.application.process_update(update)
            if self._failed.pop(update.update_id, None) is not None:
                # A handler failed (the database, say): left unanswered, so the
                # worker's sweep handles the update again.
                raise RuntimeError(f"handling Telegram update {update.update_id} failed")
        async with desk.database.transaction() as uow:
            stored = await uow.inbound.get_for_update(inbound_id)
            stored.reply_text = ""  # handled: whatever it caused is in the outbox
        return IntakeResult(reply="", ticket_number=None, duplicate=False)

    async def _remember_failure(self, update: object, context: Context) -> None:
        """PTB's error handler: log the failure and mark the update for another try."""
        error = context.error
        if isinstance(update, Update) and error is not None:
            self._failed[update.update_id] = error
        logger.error("a Telegram handler failed", exc_info=error)

    # ------------------------------------------------------------------ handlers

    def _add_handlers(self) -> None:
        private = filters.ChatType.PRIVATE
        app = self.application
        app.add_handler(CommandHandler("start", self._start, filters=private))
        app.add_handler(CommandHandler("stop", self._as_text("退订"), filters=private))
        app.add_handler(CommandHandler("help", self._as_text("帮助"), filters=private))
        app.add_handler(CommandHandler("my", self._as_text("查询"), filters=private))
        app.add_handler(CommandHandler("status", self._status, filters=private))
        app.add_handler(
            MessageHandler(private & filters.TEXT & ~filters.COMMAND, self._resident_text)
        )
        app.add_handler(
            MessageHandler(
                private & (filters.PHOTO | filters.Document.ALL | filters.LOCATION),
                self._resident_media,
            )
        )
        app.add_handler(CallbackQueryHandler(self._rate, pattern=RATING_BUTTON))
        app.add_handler(CallbackQueryHandler(self._details, pattern=DETAILS_BUTTON))
        app.add_handler(CallbackQueryHandler(self._ticket_tapped, pattern=STATUS_BUTTON))
        app.add_handler(CommandHandler("bind", self._bind, filters=filters.ChatType.GROUPS))
        app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self._migrated))
        app.add_handler(ChatMemberHandler(self._membership, ChatMemberHandler.MY_CHAT_MEMBER))
        # Department groups: card buttons and replies (签收, 办结, 退单, 转办).
        add_staff_handlers(app, self._desk)
        # The admin room: /stats, /overdue, /find, /reveal.
        add_admin_handlers(app, self._desk)
        # Triage in the admin room: one tap routes a ticket the router was unsure of.
        add_triage_handlers(app, self._desk)

    async def _resident(
        self,
        update: Update,
        text: str,
        *,
        attachments: tuple[Attachment, ...] = (),
        external_id: str | None = None,
    ) -> None:
        """A resident's message, as any channel's: stored, answered by the outbox.

        ``external_id`` is the dedupe key when the message is not the update's
        own (a button tap: one per tap, whichever message carries the button).
        """
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None:
            return
        await handle_incoming(
            self._desk,
            IncomingMessage(
                channel=CHANNEL,
                external_id=external_id or f"{chat.id}:{message.message_id}",
                sender=str(chat.id),
                text=text,
                media_count=len(attachments),
                attachments=attachments,
            ),
        )

    async def _resident_text(self, update: Update, context: Context) -> None:
        message = update.effective_message
        await self._resident(update, message.text or "" if message else "")

    async def _resident_media(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        await self._resident(update, message.caption or "", attachments=attachments_of(message))

    async def _status(self, update: Update, context: Context) -> None:
        number = " ".join(context.args or ())
        await self._resident(update, f"查询 {number}".strip())

    def _as_text(self, text: str) -> Any:
        """A command that means what the resident could also have typed (/my = 查询)."""

        async def handler(update: Update, context: Context) -> None:
            await self._resident(update, text)

        return handler

    async def _bind(self, update: Update, context: Context) -> None:
        """/bind <单位代码> in a group: this group (topic) now serves that department."""
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if message is None or chat is None or user is None:
            return
        thread_id = topic_of(update)
        code = " ".join(context.args or ())
        try:
            bound = await bind_group(self._desk, user.id, chat.id, thread_id, code)
        except NotAuthorised:
            reply = "只有投诉中心管理员可以绑定工作群。"
        except InvalidInput as exc:
            reply = exc.resident_message
        else:
            reply = f"已将本群绑定为{bound.name}的工作群，新的工单将发送到这里。"
        await say_in_chat(self._desk, chat.id, thread_id, reply, purpose="reply")

    async def _membership(self, update: Update, context: Context) -> None:
        """The bot was added to or removed from a group."""
        change = update.my_chat_member
        if change is None or change.chat.type == change.chat.PRIVATE:
            return  # a resident blocking the bot shows as Forbidden on the next send
        chat_id = change.chat.id
        admin_room = self._desk.config.desk.admin_chat_id
        if change.new_chat_member.status in ("left", "kicked"):
            name = await bot_left_group(self._desk, chat_id)
            if name is not None and admin_room is not None and admin_room != chat_id:
                await say_in_chat(
                    self._desk,
                    admin_room,
                    None,
                    f"注意：机器人已被移出{name}的工作群，该单位的工单无法送达，"
                    "请重新拉入机器人或在新群中发送 /bind 单位代码。",
                    purpose="reply",
                )
        elif change.old_chat_member.status in ("left", "kicked"):
            async with self._desk.database.reading() as uow:
                bound = await uow.directory.department_by_chat(chat_id)
            if bound is None and chat_id != admin_room:
                await say_in_chat(
                    self._desk,
                    chat_id,
                    None,
                    "您好！请投诉中心管理员在本群发送 /bind 单位代码，将本群设为该单位的工作群。",
                    purpose="reply",
                )

    async def _migrated(self, update: Update, context: Context) -> None:
        """A group became a supergroup: its department follows to the new chat id."""
        message = update.effective_message
        if message is None or message.migrate_to_chat_id is None:
            return
        moved = await chat_migrated(self._desk, message.chat.id, message.migrate_to_chat_id)
        if moved:
            logger.info(
                "group %s became supergroup %s", message.chat.id, message.migrate_to_chat_id
            )

    async def _rate(self, update: Update, context: Context) -> None:
        """满意 / 基本满意 / 不满意 tapped: the same as texting 评价 <编号> <n>."""
        tap = private_tap(update, RATING_BUTTON)
        if tap is None:
            return
        query, _, found = tap
        await query.answer("已收到您的评价，谢谢。")
        # One rating per tap; a redelivered tap finds its stored answer.
        await self._resident(
            update, f"评价 {found.group(1)} {found.group(2)}", external_id=f"callback:{query.id}"
        )

    async def _details(self, update: Update, context: Context) -> None:
        """补充材料 tapped: the resident's next messages join that ticket."""
        tap = private_tap(update, DETAILS_BUTTON)
        if tap is None:
            return
        query, chat, found = tap
        reply = await open_details(self._desk, CHANNEL, str(chat.id), found.group(1))
        await query.answer()
        await say_in_chat(self._desk, chat.id, None, reply, purpose="reply")

    async def _ticket_tapped(self, update: Update, context: Context) -> None:
        """A ticket in the /my list tapped: the same as /status <编号>."""
        tap = private_tap(update, STATUS_BUTTON)
        if tap is None:
            return
        query, _, found = tap
        await query.answer()
        await self._resident(update, f"查询 {found.group(1)}", external_id=f"callback:{query.id}")

    async def _start(self, update: Update, context: Context) -> None:
        """/start: the welcome, and prompts and broadcasts (back) on."""
        chat = update.effective_chat
        if chat is None:
            return
        await opt_in(self._desk, CHANNEL, str(chat.id))
        welcome = texts.telegram_welcome(self._desk.config.desk.name)
        await say_in_chat(self._desk, chat.id, None, welcome, purpose="reply")


def private_tap(
    update: Update, pattern: re.Pattern[str]
) -> tuple[CallbackQuery, Chat, re.Match[str]] | None:
    """A resident's button press in their private chat matching ``pattern``; else None."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None or chat.type != chat.PRIVATE:
        return None
    found = pattern.match(query.data or "")
    return None if found is None else (query, chat, found)


def attachments_of(message: Message) -> tuple[Attachment, ...]:
    """What a resident's message carries that the department should get.

    A photo is kept as its largest size; Telegram sends every size of it.
    """
    if message.photo:
        return (Attachment("photo", file_ref=message.photo[-1].file_id),)
    if message.document is not None:
        document = message.document
        return (Attachment("document", file_ref=document.file_id, file_name=document.file_name),)
    if message.location is not None:
        location = message.location
        return (Attachment("location", latitude=location.latitude, longitude=location.longitude),)
    return ()


def _sender_of(data: dict[str, Any]) -> str:
    """The chat an update comes from, for the inbound row (never shown to anyone)."""
    for key in ("message", "edited_message", "my_chat_member"):
        part = data.get(key)
        if isinstance(part, dict) and isinstance(part.get("chat"), dict):
            return str(part["chat"].get("id", ""))
    query = data.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("from"), dict):
        return str(query["from"].get("id", ""))
    return ""


class TelegramRunning:
    """The Telegram channel's inbound half while the desk runs: started, then stopped."""

    def __init__(self, front: TelegramFrontDoor, poller: asyncio.Task[None] | None) -> None:
        self.front = front
        self._poller = poller
        self._stop = asyncio.Event()

    @classmethod
    async def start(
        cls,
        desk: Desk,
        token: str,
        *,
        webhook_url: str | None,
        base_url: str | None = None,
        request: BaseRequest | None = None,
        poll: bool = True,
    ) -> TelegramRunning:
        """Initialise the bot; register the webhook, or start polling (development)."""
        application = build_application(token, request=request, base_url=base_url)
        await application.initialize()
        secret = webhook_secret(token)
        front = TelegramFrontDoor(desk, application, secret_token=secret)
        if webhook_url is not None:
            await application.bot.set_webhook(
                webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
            )
            logger.info("Telegram webhook set (updates arrive at %s)", WEBHOOK_PATH)
            return cls(front, None)
        running = cls(front, None)
        if poll:
            logger.info("TELEGRAM_WEBHOOK_URL is not set: polling getUpdates (development mode)")
            running._poller = asyncio.create_task(
                front.poll(running._stop), name="telegram-polling"
            )
        return running

    async def stop(self) -> None:
        """Stop polling and close the bot's connections."""
        self._stop.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.front.application.shutdown()
