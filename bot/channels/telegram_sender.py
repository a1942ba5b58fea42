"""The Telegram channel's outbound half: outbox rows to the Bot API's sendMessage.

A row's recipient is a chat id (a resident's private chat, or a department's
group), its ``thread_id`` the forum topic, its buttons rows of
``{"text": label, "data": callback_data}`` sent as an inline keyboard. Text
goes as plain text, without a parse mode: bodies quote what residents wrote,
and plain text cannot fail to parse or need escaping. Link previews are off,
so a notice stays a notice.

A body over 4,096 characters is cut by ``nlp.telegram_text.split_message``
into parts sent in order, the buttons on the last; the id returned, and
stored on the row, is the last part's message id. A transient failure of a
later part is remembered in memory, keyed by outbox id, so the dispatcher's
retry resumes there instead of sending the first parts twice (per process and
bounded: the outbox promises at least once, never exactly once).

Telegram's flood limits are about 30 messages a second for the bot, one a
second in a private chat and 20 a minute in a group. ``ChatPacer`` waits for
all of them before every call; a 429 that still comes back carries Telegram's
``retry_after``, which the dispatcher honours.

Errors become the channel-neutral ``TransientSendError`` or
``PermanentSendError``. The bot token is part of every request URL; it never
appears in an error text, and the loggers that would print it (PTB logs the
URL when a ``Bot`` is built, httpx every request URL) pass through a filter
that replaces it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import warnings
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Final, TypeVar
from urllib.parse import urlsplit

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import OutgoingMessage, PermanentSendError, SendError, TransientSendError
from bot.channels.parts import PartedSends
from bot.pacing import SegmentPacer
from bot.settings import Settings
from nlp.telegram_text import split_message

logger = logging.getLogger(__name__)

DEFAULT_API_SERVER: Final = "https://api.telegram.org"
DEFAULT_REQUEST_TIMEOUT_SECONDS: Final = 15.0
MAX_CALLBACK_DATA_BYTES: Final = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA  # 64

# Telegram's flood limits (core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
OVERALL_PER_SECOND: Final = 30.0
PRIVATE_PER_SECOND: Final = 1.0
GROUP_PER_MINUTE: Final = 20
GROUP_BURST: Final = 3
# Buckets of the chats messaged most recently. A chat's bucket is full again
# seconds after its last message, and the overall rate bounds how fast chats
# are touched (30 a second: the 10,000th most recent chat was last messaged
# minutes ago), so the chat forgotten is one whose bucket was full anyway.
MAX_TRACKED_CHATS: Final = 10_000

# Multi-part sends remembered between a transient failure and its retry.

_TOKEN_SHAPE: Final = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
_CHAT_ID: Final = re.compile(r"-?[0-9]+")
_NO_PREVIEW: Final = LinkPreviewOptions(is_disabled=True)
# Outbox kinds that re-send a resident's attachment, and Telegram's caption limit.
MEDIA_KINDS: Final = frozenset({"photo", "document", "location"})
MAX_CAPTION: Final = 1024
MAX_VENUE_TITLE: Final = 100
_NOT_MODIFIED: Final = "message is not modified"
T = TypeVar("T")

# Bot API error descriptions (PTB drops the "Bad Request: " prefix). A chat
# that does not exist, or that the bot may never see, will not start to.
_CHAT_GONE: Final = ("chat not found", "peer_id_invalid", "user not found")
_TOPIC_GONE: Final = ("message thread not found", "topic_deleted", "topic_closed")


class TelegramChatMigrated(PermanentSendError):
    """The group became a supergroup: the chat id changed and the old one is dead.

    The group lifecycle handler re-binds the department to ``new_chat_id``.
    Reviving the dead letter would send it to the old id again: whoever
    re-queues it finds the new one here and in the error text.
    """

    def __init__(self, old_chat_id: int, new_chat_id: int, where: str = "") -> None:
        super().__init__(
            f"Telegram chat {old_chat_id} was upgraded to a supergroup and is now chat "
            f"{new_chat_id}{where}: re-bind whatever used {old_chat_id} to {new_chat_id}"
        )
        self.old_chat_id = old_chat_id
        self.new_chat_id = new_chat_id


class ChatPacer:
    """Telegram's flood limits as token buckets: one for the bot, one per recent chat.

    A private chat (positive id) gets ``private_per_second`` with no burst. A
    group, supergroup or channel (negative id) gets a burst of ``group_burst``
    and then ``group_per_minute - group_burst`` a minute, so no minute ever holds
    more than ``group_per_minute``. The chat's bucket is waited for before the
    bot's, so a message held back by its chat does not hold a slot of the
    overall rate while it waits.
    """

    def __init__(
        self,
        *,
        overall_per_second: float = OVERALL_PER_SECOND,
        private_per_second: float = PRIVATE_PER_SECOND,
        group_per_minute: int = GROUP_PER_MINUTE,
        group_burst: int = GROUP_BURST,
        max_chats: int = MAX_TRACKED_CHATS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 1 <= group_burst < group_per_minute:
            raise ValueError(
                f"group_burst must be at least 1 and below group_per_minute ({group_per_minute}), "
                f"got {group_burst}"
            )
        if max_chats < 1:
            raise ValueError(f"max_chats must be at least 1, got {max_chats}")
        if not private_per_second > 0:
            raise ValueError(f"private_per_second must be positive, got {private_per_second}")
        self._private_per_second = private_per_second
        self._group_per_second = (group_per_minute - group_burst) / 60
        self._group_burst = group_burst
        self._max_chats = max_chats
        self._clock = clock
        self._sleep = sleep
        self._overall = SegmentPacer(overall_per_second, 1, clock=clock, sleep=sleep)
        self._chats: OrderedDict[int, SegmentPacer] = OrderedDict()

    @property
    def tracked_chats(self) -> int:
        """How many chats have a bucket now (never more than ``max_chats``)."""
        return len(self._chats)

    def bucket(self, chat_id: int) -> SegmentPacer | None:
        """The chat's bucket, if it is tracked."""
        return self._chats.get(chat_id)

    async def acquire(self, chat_id: int) -> None:
        """Wait until one message to ``chat_id`` is within every limit."""
        bucket = self._chats.get(chat_id)
        if bucket is None:
            bucket = self._bucket_for(chat_id)
            self._chats[chat_id] = bucket
            while len(self._chats) > self._max_chats:
                self._chats.popitem(last=False)
        else:
            self._chats.move_to_end(chat_id)
        await bucket.acquire(1)
        await self._overall.acquire(1)

    def _bucket_for(self, chat_id: int) -> SegmentPacer:
        if chat_id > 0:
            return SegmentPacer(self._private_per_second, 1, clock=self._clock, sleep=self._sleep)
        return SegmentPacer(
            self._group_per_second, self._group_burst, clock=self._clock, sleep=self._sleep
        )


class TelegramSender:
    """A ``Sender`` for the ``telegram`` channel through the Bot API's sendMessage."""

    # Waits for the flood limits itself and bounds each API call with its own
    # timeout, so the dispatcher does not time the whole send.
    paced = True

    def __init__(
        self,
        *,
        token: str,
        api_base_url: str | None = None,
        request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        request: BaseRequest | None = None,
        pacer: ChatPacer | None = None,
        max_message_length: int = MessageLimit.MAX_TEXT_LENGTH,
    ) -> None:
        """Check the configuration and build the ``Bot`` (no network until a call).

        ``api_base_url`` is a self-hosted Bot API server (``None``: Telegram's).
        ``request`` (by default an ``HTTPXRequest`` with the timeout below) is
        owned by the sender from then on and shut down by ``close()``; tests
        give a fake. ``pacer`` replaces the default ``ChatPacer``.
        """
        if not _TOKEN_SHAPE.fullmatch(token):
            # Never echo it: a mistyped token is still mostly the real one.
            raise ValueError(
                "the bot token does not look like one (<bot id>:<secret> from @BotFather, "
                "no spaces or quotes): check TELEGRAM_BOT_TOKEN"
            )
        if not request_timeout_seconds > 0:
            raise ValueError(
                f"request_timeout_seconds must be positive, got {request_timeout_seconds}"
            )
        if not 2 <= max_message_length <= MessageLimit.MAX_TEXT_LENGTH:
            raise ValueError(
                f"max_message_length must be between 2 and {MessageLimit.MAX_TEXT_LENGTH}, "
                f"got {max_message_length}"
            )
        base_url = bot_api_base_url(api_base_url or DEFAULT_API_SERVER)
        self.channel = "telegram"
        self._base_url = base_url
        self._token = token
        self._request_timeout = request_timeout_seconds
        self._max_message_length = max_message_length
        self._pacer = pacer if pacer is not None else ChatPacer()
        self._request = (
            request
            if request is not None
            else HTTPXRequest(
                read_timeout=request_timeout_seconds,
                write_timeout=request_timeout_seconds,
                connect_timeout=request_timeout_seconds,
                pool_timeout=request_timeout_seconds,
            )
        )
        # Before the Bot: its constructor logs the URL with the token in it.
        _REDACTOR.register(token)
        self._closed = False
        # The same request object for getUpdates, which is never called: PTB
        # would otherwise open a second HTTP client nobody closes.
        self._bot = Bot(
            token,
            base_url=base_url,
            base_file_url=base_url.removesuffix("/bot") + "/file/bot",
            request=self._request,
            get_updates_request=self._request,
        )
        self._username: str | None = None
        self._parts = PartedSends("Telegram message")

    @property
    def pacer(self) -> ChatPacer:
        """The pacer every API call waits on."""
        return self._pacer

    @property
    def api_base_url(self) -> str:
        """PTB's base URL for the Bot API server, without the token."""
        return self._base_url

    @property
    def username(self) -> str | None:
        """The bot's @username once ``initialize()`` has asked Telegram, else None."""
        return self._username

    async def initialize(self) -> None:
        """Open the HTTP client and check the token with getMe.

        A token the Bot API rejects raises ``ValueError`` naming the setting
        (never the token). A Bot API that cannot be reached is only logged:
        the outbox retries, and it may well be back by then.
        """
        await self._request.initialize()
        try:
            async with asyncio.timeout(self._request_timeout):
                me = await self._bot.get_me(
                    read_timeout=self._request_timeout,
                    write_timeout=self._request_timeout,
                    connect_timeout=self._request_timeout,
                    pool_timeout=self._request_timeout,
                )
        except InvalidToken:
            # Not chained: PTB's text is harmless here, but its cause is the raw response.
            raise ValueError(
                "the Bot API rejected the bot token (getMe): check TELEGRAM_BOT_TOKEN, "
                "and TELEGRAM_API_BASE_URL if a self-hosted server is configured"
            ) from None
        except TimeoutError:
            logger.warning(
                "the Bot API did not answer getMe within %gs; sending will retry",
                self._request_timeout,
            )
            return
        except TelegramError as exc:
            logger.warning(
                "could not check the bot token with getMe (%s: %s); sending will retry",
                type(exc).__name__,
                _REDACTOR.redact(exc.message),
            )
            return
        self._username = me.username
        logger.info("Telegram sender ready as @%s", me.username)

    async def close(self) -> None:
        """Close the HTTP client; the sender sends nothing afterwards."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._request.shutdown()
        finally:
            _REDACTOR.unregister(self._token)

    async def send(self, message: OutgoingMessage) -> str | None:
        """Send the row: its text (in parts when over the limit), an edit, or an attachment."""
        chat_id = _chat_id(message.recipient)
        keyboard = inline_keyboard(message.buttons)
        if message.kind == "edit":
            return await self._edit(chat_id, message, keyboard)
        if message.kind in MEDIA_KINDS:
            return await self._send_media(chat_id, message, keyboard)
        if message.kind != "text":
            raise PermanentSendError(
                f"outbox {message.outbox_id}: unknown message kind {message.kind!r}"
            )
        parts = tuple(split_message(message.body, self._max_message_length))
        if not parts:
            raise PermanentSendError("the message body is empty: Telegram refuses empty messages")
        if len(parts) == 1:
            return await self._send_part(chat_id, message, parts[0], keyboard, where="")

        async def send_part(index: int, count: int) -> str | None:
            # The buttons go with the last part, under the whole text.
            markup = keyboard if index == count - 1 else None
            where = f" (part {index + 1} of {count})"
            return await self._send_part(chat_id, message, parts[index], markup, where=where)

        return await self._parts.send(message.outbox_id, parts, send_part)

    async def _send_part(
        self,
        chat_id: int,
        message: OutgoingMessage,
        text: str,
        keyboard: InlineKeyboardMarkup | None,
        *,
        where: str,
    ) -> str:
        """One sendMessage call, paced; returns the message id or raises a ``SendError``."""
        sent = await self._call(
            chat_id,
            message.thread_id,
            where,
            lambda **timeouts: self._bot.send_message(
                chat_id=chat_id,
                text=text,
                message_thread_id=message.thread_id,
                reply_markup=keyboard,
                link_preview_options=_NO_PREVIEW,
                **timeouts,
            ),
        )
        logger.debug(
            "outbox %d%s: Telegram accepted message %d in chat %d",
            message.outbox_id,
            where,
            sent.message_id,
            chat_id,
        )
        return str(sent.message_id)

    async def _edit(
        self, chat_id: int, message: OutgoingMessage, keyboard: InlineKeyboardMarkup | None
    ) -> str:
        """editMessageText: the message shows the new body; no buttons removes the keyboard.

        An edit that changes nothing (Telegram's "message is not modified", as
        when a retried edit had in fact gone through) counts as done.
        """
        if message.edit_message_id is None:
            raise PermanentSendError(
                f"outbox {message.outbox_id}: the message to edit was never sent "
                "(its outbox row is not 'sent'), so there is nothing to edit"
            )
        if len(message.body) > self._max_message_length:
            raise PermanentSendError(
                f"outbox {message.outbox_id}: an edit of {len(message.body)} characters is over "
                f"Telegram's {self._max_message_length}; an edit cannot be split"
            )
        message_id = int(message.edit_message_id)
        try:
            await self._call(
                chat_id,
                None,
                f" (edit of message {message_id})",
                lambda **timeouts: self._bot.edit_message_text(
                    message.body,
                    chat_id=chat_id,
                    message_id=message_id,
                    reply_markup=keyboard,
                    link_preview_options=_NO_PREVIEW,
                    **timeouts,
                ),
            )
        except PermanentSendError as exc:
            if _NOT_MODIFIED in str(exc).lower():
                return str(message_id)
            raise
        return str(message_id)

    async def _send_media(
        self, chat_id: int, message: OutgoingMessage, keyboard: InlineKeyboardMarkup | None
    ) -> str:
        """A resident's photo, document (by Telegram file id) or location, re-sent.

        Re-sent, not forwarded: a forward would show the resident's name and
        account to the department.
        """
        payload = message.payload or {}
        thread_id = message.thread_id
        where = f" ({message.kind})"
        caption = message.body[:MAX_CAPTION] or None
        if message.kind == "location":
            try:
                latitude, longitude = float(payload["latitude"]), float(payload["longitude"])
            except (KeyError, TypeError, ValueError):
                raise PermanentSendError(
                    f"outbox {message.outbox_id}: a location needs latitude and longitude"
                ) from None
            sent = await self._call(
                chat_id,
                thread_id,
                where,
                # A venue, not a bare location: its title names the ticket.
                lambda **timeouts: self._bot.send_venue(
                    chat_id=chat_id,
                    latitude=latitude,
                    longitude=longitude,
                    title=message.body[:MAX_VENUE_TITLE] or "群众提供的位置",
                    address=f"{latitude:.5f}, {longitude:.5f}",
                    message_thread_id=thread_id,
                    reply_markup=keyboard,
                    **timeouts,
                ),
            )
            return str(sent.message_id)
        file_id = payload.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise PermanentSendError(
                f"outbox {message.outbox_id}: a {message.kind} needs a file_id"
            )
        send = self._bot.send_photo if message.kind == "photo" else self._bot.send_document
        sent = await self._call(
            chat_id,
            thread_id,
            where,
            lambda **timeouts: send(
                chat_id,
                file_id,
                caption=caption,
                message_thread_id=thread_id,
                reply_markup=keyboard,
                **timeouts,
            ),
        )
        return str(sent.message_id)

    async def _call(
        self,
        chat_id: int,
        thread_id: int | None,
        where: str,
        call: Callable[..., Awaitable[T]],
    ) -> T:
        """One Bot API call, paced and bounded; its errors as the outbox's ``SendError``."""
        await self._pacer.acquire(chat_id)
        timeout = self._request_timeout
        try:
            # PTB's timeouts end the HTTP request cleanly; this one bounds the
            # whole call, however the time is spent.
            async with asyncio.timeout(timeout):
                return await call(
                    read_timeout=timeout,
                    write_timeout=timeout,
                    connect_timeout=timeout,
                    pool_timeout=timeout,
                )
        except TelegramError as exc:
            # Not chained: the cause of a network error may carry the request URL.
            raise _error_from_telegram(exc, chat_id, thread_id, where) from None
        except TimeoutError as exc:
            raise TransientSendError(
                f"the Bot API did not answer within {timeout:g}s{where}"
            ) from exc


def _error_from_telegram(
    exc: TelegramError, chat_id: int, thread_id: int | None, where: str
) -> SendError:
    """Map a PTB error to the outbox's errors. Order matters: BadRequest is a NetworkError."""
    detail = _REDACTOR.redact(exc.message)
    if isinstance(exc, RetryAfter):
        seconds = retry_after_seconds(exc)
        return TransientSendError(
            f"Telegram flood control{where}: retry after {seconds:g}s", retry_after=seconds
        )
    if isinstance(exc, ChatMigrated):
        return TelegramChatMigrated(chat_id, exc.new_chat_id, where)
    if isinstance(exc, Forbidden):
        # Blocked by the user, deactivated, kicked from the group, never started.
        return PermanentSendError(
            f"Telegram refused chat {chat_id}{where}: {detail}", unreachable=True
        )
    if isinstance(exc, InvalidToken):
        return PermanentSendError(
            f"the Bot API rejected the bot token{where} ({detail}): check TELEGRAM_BOT_TOKEN "
            "and TELEGRAM_API_BASE_URL"
        )
    if isinstance(exc, BadRequest):
        reason = detail.lower()
        if any(gone in reason for gone in _CHAT_GONE):
            return PermanentSendError(
                f"Telegram has no chat {chat_id} the bot can reach{where}: {detail}",
                unreachable=True,
            )
        if thread_id is not None and any(gone in reason for gone in _TOPIC_GONE):
            return PermanentSendError(
                f"forum topic {thread_id} of chat {chat_id} is deleted or closed{where}: "
                f"{detail}; re-bind the department's topic"
            )
        return PermanentSendError(
            f"Telegram refused the message to chat {chat_id}{where}: {detail}"
        )
    if isinstance(exc, TimedOut):
        return TransientSendError(f"the Bot API timed out{where}: {detail}")
    if isinstance(exc, NetworkError):
        # Connection failures and 5xx answers alike.
        return TransientSendError(f"network error calling the Bot API{where}: {detail}")
    # Conflict, an unparsable answer from a proxy: nothing about the message itself.
    return TransientSendError(f"Bot API error{where}: {type(exc).__name__}: {detail}")


def retry_after_seconds(exc: RetryAfter) -> float:
    """Telegram's ``retry_after`` in seconds, whichever type this PTB returns it as.

    PTB 22 gives an int, with a deprecation warning on every read, unless
    ``PTB_TIMEDELTA`` is set, when it gives the timedelta it will always give.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _chat_id(recipient: str) -> int:
    """The chat id an outbox row names, or a permanent error: it will never be one."""
    if not _CHAT_ID.fullmatch(recipient):
        raise PermanentSendError(
            f"recipient {recipient!r} is not a Telegram chat id (an integer)", unreachable=True
        )
    return int(recipient)


def inline_keyboard(
    buttons: Sequence[Sequence[dict[str, str]]] | None,
) -> InlineKeyboardMarkup | None:
    """An outbox row's buttons as an inline keyboard; None when it has none.

    Raises ``PermanentSendError`` for a button Telegram would refuse, before
    anything is sent. Empty rows are dropped (Telegram refuses them, and the
    message is worth more than its layout).
    """
    if not buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for row_number, row in enumerate(buttons, start=1):
        keys: list[InlineKeyboardButton] = []
        for position, button in enumerate(row, start=1):
            label, data = button.get("text", ""), button.get("data", "")
            at = f"button {label!r} (row {row_number}, position {position})"
            if not label:
                raise PermanentSendError(f"{at} has no text")
            size = len(data.encode("utf-8"))
            if size == 0:
                raise PermanentSendError(f"{at} has no callback data")
            if size > MAX_CALLBACK_DATA_BYTES:
                raise PermanentSendError(
                    f"{at}: callback data {data!r} is {size} bytes in UTF-8; "
                    f"Telegram allows at most {MAX_CALLBACK_DATA_BYTES}"
                )
            keys.append(InlineKeyboardButton(text=label, callback_data=data))
        if keys:
            rows.append(keys)
    return InlineKeyboardMarkup(rows) if rows else None


def bot_api_base_url(server_url: str) -> str:
    """PTB's ``base_url`` for a Bot API server: the server URL and ``/bot``.

    PTB appends the token to it (``https://api.telegram.org/bot`` + token);
    ``https://tg.example:8081``, ``https://tg.example:8081/`` and
    ``https://tg.example:8081/bot`` all give ``https://tg.example:8081/bot``.
    """
    parts = urlsplit(server_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"the Bot API server must be an absolute http(s) URL, got {server_url!r}: "
            "check TELEGRAM_API_BASE_URL"
        )
    if parts.query or parts.fragment:
        raise ValueError(
            "the Bot API server URL takes no query or fragment: check TELEGRAM_API_BASE_URL"
        )
    base = server_url.rstrip("/")
    return base if base.endswith("/bot") else base + "/bot"


def telegram_sender_from_settings(
    settings: Settings, *, request: BaseRequest | None = None
) -> TelegramSender | None:
    """The Telegram sender the settings describe; None when TELEGRAM_BOT_TOKEN is unset.

    A malformed token or server URL raises ``ValueError`` naming the setting.
    ``request`` replaces PTB's HTTP layer (tests pass a fake Bot API); the
    sender shuts it down on ``close()``. Nothing touches the network until
    ``initialize()`` or the first send.
    """
    secret = settings.telegram_bot_token
    token = secret.get_secret_value() if secret is not None else ""
    if not token:
        return None
    server = settings.telegram_api_base_url
    return TelegramSender(
        token=token,
        api_base_url=str(server) if server is not None else None,
        request=request,
    )


class _TokenRedactor(logging.Filter):
    """Replaces the bot tokens in use in the records of loggers that print URLs.

    One filter for the process, installed on those loggers when the first
    token is registered; each sender registers its token while it is open.
    """

    # PTB logs the API URL (token included) when a Bot or ExtBot is built, and
    # an unparsable answer verbatim; httpx logs every request URL at INFO.
    LOGGERS: Final = (
        "telegram.Bot",
        "telegram.ext.ExtBot",
        "telegram.request.BaseRequest",
        "httpx",
    )

    def __init__(self) -> None:
        super().__init__()
        self._tokens: Counter[str] = Counter()
        self._installed = False

    def register(self, token: str) -> None:
        self._tokens[token] += 1
        if not self._installed:
            for name in self.LOGGERS:
                logging.getLogger(name).addFilter(self)
            self._installed = True

    def unregister(self, token: str) -> None:
        self._tokens[token] -= 1
        if self._tokens[token] <= 0:
            del self._tokens[token]

    def redact(self, text: str) -> str:
        for token in self._secrets():
            text = text.replace(token, "[bot token]")
        return text

    def _secrets(self) -> list[str]:
        # The part after the colon is the secret; the bot id before it is public.
        secrets = {*self._tokens, *(token.partition(":")[2] for token in self._tokens)}
        return sorted((secret for secret in secrets if secret), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._tokens:
            return True
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record: the logging module reports those itself
        redacted = self.redact(text)
        if redacted != text:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatted now, redacted, and cached where every formatter looks first.
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


_REDACTOR: Final = _TokenRedactor()
