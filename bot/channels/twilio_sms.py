"""The SMS channel's outbound half: outbox rows to Twilio's Messages API.

One outbox row is one Twilio message while its body fits in ``max_segments``
(one concatenated SMS the handset shows as a single text). A longer body is
cut by ``nlp.sms_segments.split_for_sms`` into numbered parts sent in order;
the id returned, and stored on the row, is the last part's SID.

If a later part fails transiently, the parts already accepted are remembered
in memory, keyed by outbox id, and the dispatcher's retry resumes at the
failed part instead of sending the resident the first parts twice. The memory
is per process and bounded: after a restart, or when another worker takes the
retry, the earlier parts go again (the outbox promises at least once, never
exactly once). A permanent failure forgets the progress, so a revived dead
letter is sent whole.

Every API call first takes its segments from a ``SegmentPacer``; Twilio counts
a sender's throughput in segments and drops what overflows its queue.

Errors become the channel-neutral ``TransientSendError`` or
``PermanentSendError``. Twilio's error body is mapped by its code first, then
by HTTP status. The library raises errors without the response headers, so a
``Retry-After`` on a 429 is not visible here: ``retry_after`` stays ``None`` and
the dispatcher's backoff decides. Error texts name the code and status, never
the auth token, and the recipient's number is masked (dispatcher logs carry
them).

The library's asynchronous HTTP client opens an ``aiohttp`` session when it is
built, so build the sender inside the running loop (an aiohttp ``cleanup_ctx``)
and ``await close()`` it on shutdown. The client itself never retries and sets
no timeout (it passes ``timeout=None`` to aiohttp, which means none at all):
each call is bounded here and retried by the outbox.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from bot.channels.parts import PartedSends
from bot.pacing import SegmentPacer
from bot.settings import Settings
from nlp.sms_segments import (
    DEFAULT_MAX_SEGMENTS,
    MAX_SEGMENTS_PER_MESSAGE,
    segment_count,
    split_for_sms,
)

logger = logging.getLogger(__name__)

# Where Twilio posts delivery reports, under the public base URL.
STATUS_CALLBACK_PATH: Final = "/sms/status"
DEFAULT_REQUEST_TIMEOUT_SECONDS: Final = 15.0

# Twilio error codes (https://www.twilio.com/docs/api/errors).
OPTED_OUT_CODE: Final = 21610  # the recipient replied STOP to this sender
# 21211 invalid 'To' number, 21614 'To' is not a mobile number: never reachable by SMS.
UNREACHABLE_CODES: Final = frozenset({21211, 21614})
# 20429 too many requests, 21611 and 30001 queue overflow: the request was fine, the timing not.
TRANSIENT_CODES: Final = frozenset({20429, 21611, 30001})
_AUTHENTICATION_CODES: Final = frozenset({20003})

# Multi-part sends remembered between a transient failure and its retry.
# Rows are retried within hours, and a dead letter's progress is only wasted
# memory, so the oldest are forgotten beyond this.


class HeaderAuthTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The library's async HTTP client, with the credentials sent as a header.

    twilio 9.13 hands aiohttp ``auth=BasicAuth(...)``, which aiohttp 3.14
    deprecates (removed in 4); the header it builds here is the same bytes on
    the wire. The library's logging already leaves Authorization headers out.
    """

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        # The library's own signature: ClientBase calls it with these keywords.
        timeout: float | None = None,  # noqa: ASYNC109
        allow_redirects: bool = False,
    ) -> Response:
        if auth is not None:
            login, password = auth
            credentials = base64.b64encode(f"{login}:{password}".encode()).decode()
            headers = {**(headers or {}), "Authorization": f"Basic {credentials}"}
        response: Response = await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        return response


class TwilioSmsSender:
    """A ``Sender`` for the ``sms`` channel through Twilio's Messages API."""

    # Waits for the segment rate itself and bounds each API call with its own
    # timeout, so the dispatcher does not time the whole send.
    paced = True

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback_url: str | None = None,
        segments_per_second: float = 1.0,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
        request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        http_client: AsyncTwilioHttpClient | None = None,
        pacer: SegmentPacer | None = None,
    ) -> None:
        """Check the configuration, then open the HTTP client (needs a running loop).

        ``http_client`` (by default a ``HeaderAuthTwilioHttpClient``) is owned
        by the sender from then on and closed by ``close()``. ``pacer``
        replaces the one ``segments_per_second`` would build (burst: one full
        message of ``max_segments``); tests give one with a fake clock.
        """
        from_number = from_number or None
        messaging_service_sid = messaging_service_sid or None
        _check_configuration(
            account_sid=account_sid,
            auth_token=auth_token,
            from_number=from_number,
            messaging_service_sid=messaging_service_sid,
            status_callback_url=status_callback_url,
            max_segments=max_segments,
            request_timeout_seconds=request_timeout_seconds,
        )
        self.channel = "sms"
        # Never in an error text: the token, and the Basic credentials built from it.
        self._secrets = (
            auth_token,
            base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode(),
        )
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._status_callback_url = status_callback_url
        self._max_segments = max_segments
        self._request_timeout = request_timeout_seconds
        # A burst of one full message: after a quiet spell it goes at once.
        self._pacer = (
            pacer if pacer is not None else SegmentPacer(segments_per_second, max_segments)
        )
        self._http_client = http_client if http_client is not None else HeaderAuthTwilioHttpClient()
        self._client = Client(account_sid, auth_token, http_client=self._http_client)
        self._parts = PartedSends("SMS")

    @property
    def max_segments(self) -> int:
        """The most segments one Twilio message may have before the body is split."""
        return self._max_segments

    @property
    def pacer(self) -> SegmentPacer:
        """The pacer every API call waits on."""
        return self._pacer

    @property
    def status_callback_url(self) -> str | None:
        """Where Twilio reports delivery, or None to leave it to the Messaging Service."""
        return self._status_callback_url

    async def close(self) -> None:
        """Close the HTTP client's aiohttp session."""
        await self._http_client.close()

    async def send(self, message: OutgoingMessage) -> str | None:
        """Send the body as one message, or as numbered parts when it is too long for one."""
        if message.kind != "text":
            # Cards, their edits and attachments are Telegram's; an SMS row is only ever text.
            raise PermanentSendError(
                f"outbox {message.outbox_id}: SMS cannot send a {message.kind!r} message"
            )
        parts = tuple(split_for_sms(message.body, self._max_segments))
        if len(parts) == 1:
            return await self._create(message, parts[0], where="")

        async def send_part(index: int, count: int) -> str | None:
            where = f" (part {index + 1} of {count})"
            return await self._create(message, parts[index], where=where)

        return await self._parts.send(message.outbox_id, parts, send_part)

    async def _create(self, message: OutgoingMessage, body: str, *, where: str) -> str | None:
        """One Messages API call, paced; returns the SID or raises a ``SendError``."""
        segments = segment_count(body)
        await self._pacer.acquire(segments)
        routing: dict[str, str] = (
            {"from_": self._from_number}
            if self._from_number is not None
            else {"messaging_service_sid": str(self._messaging_service_sid)}
        )
        if self._status_callback_url is not None:
            routing["status_callback"] = self._status_callback_url
        try:
            async with asyncio.timeout(self._request_timeout):
                created = await self._client.messages.create_async(
                    to=message.recipient, body=body, **routing
                )
        except (TwilioRestException, TwilioServiceException) as exc:
            # Not chained: the library's exception carries Twilio's text unredacted,
            # and everything useful in it is in ours.
            raise self._error_from_twilio(exc, message.recipient, where) from None
        except TimeoutError as exc:
            raise TransientSendError(
                f"Twilio did not answer within {self._request_timeout:g}s{where}"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientSendError(
                f"network error calling Twilio{where}: {type(exc).__name__}: "
                f"{self._redact(str(exc), message.recipient)}"
            ) from exc
        sid = created.sid
        logger.debug(
            "outbox %d%s: Twilio accepted %d segment(s) as %s",
            message.outbox_id,
            where,
            segments,
            sid,
        )
        return None if sid is None else str(sid)

    def _error_from_twilio(
        self, exc: TwilioRestException | TwilioServiceException, recipient: str, where: str
    ) -> SendError:
        """Map a Twilio error response: by error code first, then by HTTP status."""
        status = int(exc.status)
        code = exc.code if isinstance(exc.code, int) else None
        if isinstance(exc, TwilioServiceException):
            detail = f"{exc.title}: {exc.detail}" if exc.detail else str(exc.title)
        else:
            detail = str(exc.msg)
        text = f"Twilio error {code} (HTTP {status}){where}: {self._redact(detail, recipient)}"
        if code == OPTED_OUT_CODE:
            return PermanentSendError(f"{text}; the recipient opted out (STOP)", opted_out=True)
        if code in UNREACHABLE_CODES:
            return PermanentSendError(text, unreachable=True)
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            return TransientSendError(text)
        if code in _AUTHENTICATION_CODES or status == 401:
            return PermanentSendError(f"{text}; check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if 400 <= status < 500:
            return PermanentSendError(text)
        # Redirects are not followed and nothing else is expected: a proxy in
        # the way, most likely, which may well be gone on the next attempt.
        return TransientSendError(text)

    def _redact(self, text: str, recipient: str) -> str:
        """The text without the auth token, and with the recipient's number masked."""
        for secret in self._secrets:
            text = text.replace(secret, "[auth token]")
        if recipient:
            text = text.replace(recipient, mask_address(recipient))
        return text


def _check_configuration(
    *,
    account_sid: str,
    auth_token: str,
    from_number: str | None,
    messaging_service_sid: str | None,
    status_callback_url: str | None,
    max_segments: int,
    request_timeout_seconds: float,
) -> None:
    """Raise ``ValueError`` naming what to fix in a sender configuration."""
    if not account_sid or not auth_token:
        raise ValueError("Twilio needs both an account SID and an auth token")
    if from_number is not None and messaging_service_sid is not None:
        raise ValueError(
            "configure exactly one Twilio sender, not both: a from number "
            "(TWILIO_FROM_NUMBER) or a Messaging Service SID (TWILIO_MESSAGING_SERVICE_SID)"
        )
    if from_number is None and messaging_service_sid is None:
        raise ValueError(
            "configure exactly one Twilio sender, got none: a from number "
            "(TWILIO_FROM_NUMBER) or a Messaging Service SID (TWILIO_MESSAGING_SERVICE_SID)"
        )
    if messaging_service_sid is not None and not messaging_service_sid.startswith("MG"):
        raise ValueError(
            "a Messaging Service SID starts with 'MG' "
            f"(TWILIO_MESSAGING_SERVICE_SID starts with {messaging_service_sid[:2]!r})"
        )
    if not 1 <= max_segments <= MAX_SEGMENTS_PER_MESSAGE:
        raise ValueError(
            f"max_segments must be between 1 and {MAX_SEGMENTS_PER_MESSAGE}, got {max_segments}"
        )
    if not request_timeout_seconds > 0:
        raise ValueError(f"request_timeout_seconds must be positive, got {request_timeout_seconds}")
    if status_callback_url is not None:
        parts = urlsplit(status_callback_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"status_callback_url must be an absolute http(s) URL, got {status_callback_url!r}"
            )


def mask_address(address: str) -> str:
    """A phone number reduced to what an operator needs to tell two apart: ``+86138****5678``."""
    if len(address) <= 7:
        return "****"
    return f"{address[:-8]}****{address[-4:]}"


def status_callback_url(public_base_url: str) -> str:
    """The delivery-report URL under the desk's public base URL."""
    return public_base_url.rstrip("/") + STATUS_CALLBACK_PATH


def twilio_sender_from_settings(settings: Settings) -> TwilioSmsSender | None:
    """The SMS sender the settings describe; None when Twilio is not configured at all.

    Call it inside the running loop. Half a configuration (a SID without a
    token, both a from number and a Messaging Service, neither) raises
    ``ValueError`` naming the setting to fix.
    """
    account_sid = settings.twilio_account_sid or None
    token = settings.twilio_auth_token
    auth_token = token.get_secret_value() if token is not None else None
    if account_sid is None and not auth_token:
        return None
    if account_sid is None or not auth_token:
        raise ValueError("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN together")
    callback = None
    if settings.public_base_url is None:
        logger.warning(
            "PUBLIC_BASE_URL is not set: SMS are sent without a status callback, "
            "so delivery is only tracked if the Messaging Service reports it"
        )
    else:
        callback = status_callback_url(str(settings.public_base_url))
    return TwilioSmsSender(
        account_sid=account_sid,
        auth_token=auth_token,
        from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        status_callback_url=callback,
        segments_per_second=settings.sms_segments_per_second,
        max_segments=settings.sms_max_segments,
    )
