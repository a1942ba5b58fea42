"""A fake Telegram Bot API at python-telegram-bot's request layer: no network, ever.

``FakeBotApi`` is a ``telegram.request.BaseRequest``. Hand it to PTB wherever
it takes one and every Bot API call lands in ``do_request`` instead of on
the network::

    fake = FakeBotApi()
    bot = Bot(FAKE_TOKEN, request=fake, get_updates_request=fake)
    application = (
        Application.builder().token(FAKE_TOKEN).request(fake)
        .get_updates_request(fake).updater(None).build()
    )
    sender = TelegramSender(token=FAKE_TOKEN, request=fake)

It answers the methods the desk uses the way Telegram does (``getMe``,
``sendMessage``, ``sendPhoto``, ``sendDocument``, ``sendVenue`` (files by
``file_id`` only), ``editMessageText``, ``answerCallbackQuery``,
``setWebhook``, ``deleteWebhook``, ``getWebhookInfo``), checks what Telegram
checks (text empty or over 4,096 characters, callback data over 64 bytes, an
edit of a message that does not exist or to the very same content: 400 Bad
Request), and records every call in ``calls`` as ``ApiCall(method, params)``
with the parameters as JSON values (``reply_markup`` is a dict). ``shown(chat,
message_id)`` is what a chat shows now, edits applied. ``on()`` teaches it
another method.

Scripting: ``fail_next(method, status, description, parameters)`` answers the
next call(s) of a method with a Bot API error body, which PTB turns into its
exception exactly as it would Telegram's (429 + ``retry_after`` ->
``RetryAfter``, 403 -> ``Forbidden``, 400 -> ``BadRequest``, 400 +
``migrate_to_chat_id`` -> ``ChatMigrated``); ``raise_next`` raises from the
HTTP layer (a ``TimedOut``, or any exception, which PTB wraps in
``NetworkError``); ``hang_next`` never answers until ``shutdown()``; ``answer_next`` answers
normally first, so a failure can be put on the second call.

Unknown methods FAIL LOUDLY: ``do_request`` raises ``UnexpectedApiCall`` (an
``AssertionError``). PTB wraps anything a request raises in ``NetworkError``,
and code under test may well handle that, so the call is also kept in
``unexpected``: end every test with ``assert_no_unexpected_calls()`` (a
fixture's teardown is the place).

Under ``-W error``: PTB 22's ``RetryAfter`` warns (``PTBDeprecationWarning``)
when it is built, unless ``PTB_TIMEDELTA=true``; tests that script a 429 set
it with ``monkeypatch.setenv`` or filter that warning.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from telegram.request import BaseRequest, RequestData

FAKE_BOT_ID = 7000000001
FAKE_TOKEN = f"{FAKE_BOT_ID}:AAH-fake_secret_of_the_desk_test_bot_x9"
FAKE_USERNAME = "complaint_desk_test_bot"
TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64

JsonDict = dict[str, Any]
Handler = Callable[[JsonDict], Any]


class ApiCall(NamedTuple):
    """One Bot API request as the fake received it."""

    method: str
    params: JsonDict


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The timeouts PTB passed with a call; None where it left the request's default."""

    read: float | None
    write: float | None
    connect: float | None
    pool: float | None


class UnexpectedApiCall(AssertionError):
    """The code under test called a Bot API method the fake was not taught."""


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    description: str
    parameters: JsonDict | None


@dataclass(frozen=True, slots=True)
class _Raise:
    error: Exception


@dataclass(frozen=True, slots=True)
class _Hang:
    pass


@dataclass(frozen=True, slots=True)
class _Answer:
    pass


class ApiError(Exception):
    """Raised by a handler given to ``on()`` to answer with a Bot API error."""

    def __init__(self, status: int, description: str, parameters: JsonDict | None = None) -> None:
        super().__init__(description)
        self.failure = _Failure(status, description, parameters)


class FakeBotApi(BaseRequest):
    """The Bot API for one bot, answered in memory. See the module docstring."""

    def __init__(
        self,
        token: str = FAKE_TOKEN,
        *,
        base_url: str = TELEGRAM_BASE_URL,
        username: str = FAKE_USERNAME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """A bot with this token; ``clock`` dates messages and stamps ``times``."""
        self.token = token
        self.base_url = base_url
        self.bot_user: JsonDict = {
            "id": int(token.partition(":")[0]),
            "is_bot": True,
            "first_name": "Complaint Desk",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._clock = clock
        # Every request, failed and unknown ones included, in arrival order.
        self.calls: list[ApiCall] = []
        # When each request arrived by ``clock`` and the timeouts PTB gave it,
        # parallel to ``calls``.
        self.times: list[float] = []
        self.timeouts: list[Timeouts] = []
        # Requests to methods nobody taught the fake: each one a test bug.
        self.unexpected: list[str] = []
        self.initialize_calls = 0
        self.shutdown_calls = 0
        self.webhook: JsonDict | None = None
        self._message_ids = itertools.count(1)
        self._sent: list[JsonDict] = []
        # (chat id, message id) -> what the chat shows: the text (or caption)
        # and the inline keyboard (None without one), edits applied.
        self._shown: dict[tuple[int, int], tuple[str, JsonDict | None]] = {}
        self._script: dict[str, deque[_Failure | _Raise | _Hang | _Answer]] = {}
        self._released = asyncio.Event()
        self._handlers: dict[str, Handler] = {
            "getMe": lambda params: self.bot_user,
            "sendMessage": self._send_message,
            "sendPhoto": lambda params: self._send_file(params, "photo"),
            "sendDocument": lambda params: self._send_file(params, "document"),
            "sendVenue": self._send_venue,
            "editMessageText": self._edit_message_text,
            "answerCallbackQuery": lambda params: True,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._webhook_info,
        }

    # --- scripting and inspection --------------------------------------------

    def on(self, method: str, handler: Handler) -> None:
        """Answer ``method`` with ``handler(params)``'s result (raise ``ApiError`` to fail)."""
        self._handlers[method] = handler

    def fail_next(
        self,
        method: str,
        status: int,
        description: str,
        parameters: JsonDict | None = None,
        *,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with a Bot API error body.

        ``description`` is Telegram's, e.g. ``"Forbidden: bot was blocked by the
        user"``; ``parameters`` its ResponseParameters, e.g. ``{"retry_after": 7}``.
        """
        self._queue(method, *([_Failure(status, description, parameters)] * times))

    def raise_next(self, method: str, error: Exception, *, times: int = 1) -> None:
        """Raise ``error`` from the HTTP layer on the next ``times`` calls of ``method``."""
        self._queue(method, *([_Raise(error)] * times))

    def answer_next(self, method: str, *, times: int = 1) -> None:
        """Answer the next ``times`` calls normally: a failure scripted after them comes later."""
        self._queue(method, *([_Answer()] * times))

    def hang_next(self, method: str) -> None:
        """Leave the next call of ``method`` unanswered until ``shutdown()``."""
        self._queue(method, _Hang())

    def calls_to(self, method: str) -> list[JsonDict]:
        """The parameters of every call of ``method``, in order."""
        return [call.params for call in self.calls if call.method == method]

    def sent_messages(self) -> list[JsonDict]:
        """The parameters of every message the fake accepted, in order.

        Failed sendMessage calls are left out; ``calls_to("sendMessage")`` has them all.
        """
        return list(self._sent)

    def sent_texts(self) -> list[str]:
        """The text of every message the fake accepted, in order."""
        return [str(params["text"]) for params in self._sent]

    def shown(self, chat_id: int, message_id: int) -> tuple[str, JsonDict | None]:
        """The text and inline keyboard a message shows now (KeyError if never sent)."""
        return self._shown[(int(chat_id), int(message_id))]

    def assert_no_unexpected_calls(self) -> None:
        """Fail if anything called a method the fake does not know."""
        assert not self.unexpected, f"unexpected Bot API calls: {self.unexpected}"

    def _queue(self, method: str, *answers: _Failure | _Raise | _Hang | _Answer) -> None:
        self._script.setdefault(method, deque()).extend(answers)

    # --- BaseRequest ---------------------------------------------------------

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        self.initialize_calls += 1
        self._released.clear()

    async def shutdown(self) -> None:
        self.shutdown_calls += 1
        # Hung calls end now, so nothing waits on a fake that is gone.
        self._released.set()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        api_method = urlsplit(url).path.rpartition("/")[2]
        params: JsonDict = dict(request_data.parameters) if request_data is not None else {}
        self.calls.append(ApiCall(api_method, params))
        self.times.append(self._clock())
        self.timeouts.append(
            Timeouts(
                *(
                    None if value is BaseRequest.DEFAULT_NONE else float(value)
                    for value in (read_timeout, write_timeout, connect_timeout, pool_timeout)
                )
            )
        )
        if method != "POST" or (request_data is not None and request_data.multipart_data):
            # File downloads (GET) and uploads: nothing the desk does yet.
            raise self._unexpected(f"{method} {api_method} (files)")
        if url != f"{self.base_url}{self.token}/{api_method}":
            # What Telegram answers for a wrong token or path.
            return _error_body(_Failure(404, "Not Found", None))
        handler = self._handlers.get(api_method)
        if handler is None:
            raise self._unexpected(api_method)
        script = self._script.get(api_method)
        if script:
            scripted = script.popleft()
            if isinstance(scripted, _Failure):
                return _error_body(scripted)
            if isinstance(scripted, _Raise):
                raise scripted.error
            if isinstance(scripted, _Hang):
                await self._released.wait()
                return _error_body(_Failure(502, "Bad Gateway", None))
        try:
            result = handler(params)
        except ApiError as exc:
            return _error_body(exc.failure)
        return _ok_body(result)

    def _unexpected(self, what: str) -> UnexpectedApiCall:
        self.unexpected.append(what)
        return UnexpectedApiCall(f"the fake Bot API does not know {what}: teach it with on()")

    # --- the methods ---------------------------------------------------------

    def _send_message(self, params: JsonDict) -> JsonDict:
        chat_id = params.get("chat_id")
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        text = _checked_text(params)
        _check_markup(params)
        message = self._message(int(chat_id), text, params)
        message["message_id"] = next(self._message_ids)
        self._sent.append(params)
        self._shown[(int(chat_id), message["message_id"])] = (text, params.get("reply_markup"))
        return message

    def _send_file(self, params: JsonDict, kind: str) -> JsonDict:
        chat_id = params.get("chat_id")
        file_id = params.get(kind)
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(file_id, str) or not file_id:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        caption = str(params.get("caption", ""))
        if len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        message = self._message(int(chat_id), "", params)
        del message["text"]
        message[kind] = (
            [{"file_id": file_id, "file_unique_id": file_id[-8:], "width": 1, "height": 1}]
            if kind == "photo"
            else {"file_id": file_id, "file_unique_id": file_id[-8:]}
        )
        if caption:
            message["caption"] = caption
        message["message_id"] = next(self._message_ids)
        self._shown[(int(chat_id), message["message_id"])] = (caption, None)
        return message

    def _send_venue(self, params: JsonDict) -> JsonDict:
        chat_id = params.get("chat_id")
        try:
            latitude, longitude = float(params["latitude"]), float(params["longitude"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Bad Request: latitude and longitude are required") from None
        if chat_id is None or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ApiError(400, "Bad Request: wrong location")
        title, address = str(params.get("title", "")), str(params.get("address", ""))
        if not title or not address:
            raise ApiError(400, "Bad Request: venue title and address are required")
        message = self._message(int(chat_id), "", params)
        del message["text"]
        location = {"latitude": latitude, "longitude": longitude}
        message["venue"] = {"location": location, "title": title, "address": address}
        message["location"] = location
        message["message_id"] = next(self._message_ids)
        self._shown[(int(chat_id), message["message_id"])] = (title, None)
        return message

    def _edit_message_text(self, params: JsonDict) -> JsonDict | bool:
        text = _checked_text(params)
        _check_markup(params)
        if "inline_message_id" in params:
            return True  # Telegram answers True for messages sent via inline mode
        if "chat_id" not in params or "message_id" not in params:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self._shown:
            raise ApiError(400, "Bad Request: message to edit not found")
        # Without reply_markup an edit removes the keyboard, as Telegram does.
        markup = params.get("reply_markup")
        if self._shown[key] == (text, markup):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        self._shown[key] = (text, markup)
        message = self._message(key[0], text, params)
        message["message_id"] = key[1]
        message["edit_date"] = int(self._clock())
        return message

    def _message(self, chat_id: int, text: str, params: JsonDict) -> JsonDict:
        message: JsonDict = {
            "date": int(self._clock()),
            "chat": _chat(chat_id, forum="message_thread_id" in params),
            "from": self.bot_user,
            "text": text,
        }
        if "message_thread_id" in params:
            message["message_thread_id"] = params["message_thread_id"]
            message["is_topic_message"] = True
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message

    def _set_webhook(self, params: JsonDict) -> bool:
        if not params.get("url"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        self.webhook = params
        return True

    def _delete_webhook(self, params: JsonDict) -> bool:
        self.webhook = None
        return True

    def _webhook_info(self, params: JsonDict) -> JsonDict:
        webhook = self.webhook or {}
        info: JsonDict = {
            "url": webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if "allowed_updates" in webhook:
            info["allowed_updates"] = webhook["allowed_updates"]
        return info


def _checked_text(params: JsonDict) -> str:
    text = str(params.get("text", ""))
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    # Counted in UTF-16 code units, the stricter of the two counts in circulation.
    if len(text.encode("utf-16-le", "surrogatepass")) // 2 > MAX_TEXT_LENGTH:
        raise ApiError(400, "Bad Request: message is too long")
    return text


def _check_markup(params: JsonDict) -> None:
    markup = params.get("reply_markup")
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _chat(chat_id: int, *, forum: bool) -> JsonDict:
    """A Chat object of the type the id implies (Telegram's id ranges)."""
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Resident"}
    if str(chat_id).startswith("-100"):
        return {"id": chat_id, "type": "supergroup", "title": "Department", "is_forum": forum}
    return {"id": chat_id, "type": "group", "title": "Department"}


def _ok_body(result: Any) -> tuple[int, bytes]:
    return 200, json.dumps({"ok": True, "result": result}).encode()


def _error_body(failure: _Failure) -> tuple[int, bytes]:
    body: JsonDict = {
        "ok": False,
        "error_code": failure.status,
        "description": failure.description,
    }
    if failure.parameters:
        body["parameters"] = failure.parameters
    return failure.status, json.dumps(body).encode()
