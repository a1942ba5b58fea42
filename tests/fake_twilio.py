"""A fake Twilio Messages API on 127.0.0.1, and an HTTP client that talks to it.

``FakeTwilio`` is a real aiohttp server implementing
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` the way Twilio does:
form-encoded parameters, HTTP basic auth with the account SID and auth token,
a Twilio-shaped JSON answer (``sid`` is ``SM`` + 32 hex digits, ``status``
``queued``) and Twilio-shaped error bodies. ``queue`` scripts the next
answers, so a test can make any call fail with any status and error code.

``RoutedTwilioHttpClient`` is the client the sender uses in production
(the library's ``AsyncTwilioHttpClient`` with header authentication) with one
change: the ``https://api.twilio.com`` origin is swapped for the fake's, so the
real twilio-python and aiohttp code builds, authenticates and sends every
request. Any other host is refused: no test reaches the network.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.http.response import Response
from yarl import URL

from bot.channels.twilio_sms import HeaderAuthTwilioHttpClient
from nlp.sms_segments import segment_count

TWILIO_API_HOST = "api.twilio.com"
API_VERSION = "2010-04-01"


@dataclass(frozen=True, slots=True)
class TwilioFailure:
    """A scripted error answer. ``code=None`` answers with a non-JSON body, like a proxy."""

    status: int
    code: int | None = None
    message: str = "scripted failure"
    # Twilio's newer services answer RFC 9457 problem details instead.
    problem_details: bool = False

    def response(self) -> web.Response:
        if self.code is None:
            return web.Response(status=self.status, text="<html>Service Unavailable</html>")
        more_info = f"https://www.twilio.com/docs/errors/{self.code}"
        payload: dict[str, Any]
        if self.problem_details:
            payload = {
                "type": more_info,
                "title": "Scripted problem",
                "status": self.status,
                "code": self.code,
                "detail": self.message,
            }
        else:
            payload = {
                "code": self.code,
                "message": self.message,
                "more_info": more_info,
                "status": self.status,
            }
        return web.json_response(payload, status=self.status)


@dataclass(frozen=True, slots=True)
class Hang:
    """A scripted answer that does not come before the fake shuts down."""


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """One create-message request as the fake received it."""

    account_sid: str
    username: str
    password: str
    form: dict[str, str]


class FakeTwilio:
    """Twilio's Messages API for one account, served on a random local port."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        # Authenticated create requests, failed ones included, in arrival order.
        self.requests: list[SeenRequest] = []
        # The SIDs of the messages the fake accepted, in order.
        self.created: list[str] = []
        self._script: deque[TwilioFailure | Hang | None] = deque()
        self._server: TestServer | None = None
        self._shutting_down = asyncio.Event()

    @property
    def url(self) -> URL:
        """The fake's origin, e.g. ``http://127.0.0.1:40123``."""
        assert self._server is not None, "the fake is not serving"
        return self._server.make_url("/")

    def queue(self, *answers: TwilioFailure | Hang | None) -> None:
        """Script the next answers in order: a failure, a hang, or None for a normal answer."""
        self._script.extend(answers)

    def fail_next(self, failure: TwilioFailure, times: int = 1) -> None:
        """Answer the next ``times`` create requests with ``failure``."""
        self.queue(*([failure] * times))

    @property
    def bodies(self) -> list[str]:
        """The Body of every request received, in order."""
        return [request.form.get("Body", "") for request in self.requests]

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FakeTwilio]:
        """Serve on 127.0.0.1 until the block ends."""
        app = web.Application()
        app.router.add_post(
            f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", self._create_message
        )
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        try:
            yield self
        finally:
            # Hung handlers answer now, so the server closes without waiting on them.
            self._shutting_down.set()
            await self._server.close()

    async def _create_message(self, request: web.Request) -> web.Response:
        credentials = _basic_auth(request.headers.get("Authorization", ""))
        if credentials != (self.account_sid, self.auth_token):
            return TwilioFailure(401, 20003, "Authenticate").response()
        if request.match_info["account_sid"] != self.account_sid:
            return TwilioFailure(404, 20404, "The requested resource was not found").response()
        form = {key: str(value) for key, value in (await request.post()).items()}
        username, password = credentials
        self.requests.append(
            SeenRequest(request.match_info["account_sid"], username, password, form)
        )
        if self._script:
            scripted = self._script.popleft()
            if isinstance(scripted, Hang):
                await self._shutting_down.wait()
                return TwilioFailure(503, None).response()
            if scripted is not None:
                return scripted.response()
        return self._accept(form)

    def _accept(self, form: dict[str, str]) -> web.Response:
        to, body = form.get("To"), form.get("Body")
        from_, service = form.get("From"), form.get("MessagingServiceSid")
        if not to:
            return TwilioFailure(400, 21604, "A 'To' phone number is required.").response()
        if (from_ is None) == (service is None):
            return TwilioFailure(
                400, 21603, "A 'From' phone number or a MessagingServiceSid is required."
            ).response()
        if not body:
            return TwilioFailure(400, 21602, "Message body is required.").response()
        sid = "SM" + uuid.uuid4().hex
        self.created.append(sid)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        payload = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": service,
            "num_media": "0",
            # Twilio reports 0 until a Messaging Service has picked a sender.
            "num_segments": "0" if service else str(segment_count(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        return web.json_response(payload, status=201)


def _basic_auth(header: str) -> tuple[str, str] | None:
    """The (username, password) of a Basic Authorization header, if it is one."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, password = decoded.partition(":")
    return (username, password) if separator else None


class RoutedTwilioHttpClient(HeaderAuthTwilioHttpClient):
    """The production HTTP client, sending Twilio API requests to another origin."""

    def __init__(self, origin: URL) -> None:
        super().__init__()
        self._origin = origin

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        # The library's own signature, kept so its calls still match.
        timeout: float | None = None,  # noqa: ASYNC109
        allow_redirects: bool = False,
    ) -> Response:
        target = URL(url)
        if target.host != TWILIO_API_HOST:
            raise AssertionError(f"refusing a request to {target.host}: tests stay offline")
        routed = target.with_scheme(self._origin.scheme).with_host(str(self._origin.host))
        routed = routed.with_port(self._origin.port)
        response: Response = await super().request(
            method,
            str(routed),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        return response
