"""The SMS front door: Twilio's Messaging webhooks, signed, stored, then answered.

``POST /sms/inbound`` (and ``/sms/fallback``, which Twilio calls when the
primary fails or times out, and which does exactly the same) checks the
``X-Twilio-Signature`` with the twilio library's ``RequestValidator`` against
the URL Twilio called: the configured public base URL plus the path and query
string as received, so it holds behind a TLS-terminating proxy. Nothing is
written for a request that fails the check, and with no auth token the
endpoints refuse everything (fail closed).

A valid message is stored durably (group commit, deduplicated on
``MessageSid``) before any 2xx. The TwiML response carries the resident's
answer when the intake worker produced it in time; otherwise it is empty and
the answer follows by the outbox (see ``bot.intake_worker``). A provider retry
of a stored message gets the very same reply if it was answered in the
response, and nothing (the outbox already carries it) if not.

``POST /sms/status`` takes delivery-status callbacks, signed the same way,
and moves the outbox row's delivery status forward only.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator

from bot.intake_worker import IntakeWorker
from handlers.messages import IncomingMessage
from handlers.resident_commands import TWILIO_KEYWORDS
from storage.group_commit import InboundBatchWriter, InboundRecord
from storage.unit_of_work import Database

logger = logging.getLogger(__name__)

CHANNEL = "sms"
SIGNATURE_HEADER = "X-Twilio-Signature"
# Message SIDs: SM (SMS) or MM (MMS) and 32 hex digits.
_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def twiml(reply: str | None) -> web.Response:
    """A TwiML response with the reply as one message, or none."""
    if not reply:
        body = EMPTY_TWIML
    else:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Message>{escape(reply)}</Message></Response>"
        )
    return web.Response(text=body, content_type="text/xml", charset="utf-8")


class SmsWebhook:
    """The aiohttp handlers of the SMS channel."""

    def __init__(self, *, auth_token: str | None, public_base_url: str | None) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None
        self._base_url = public_base_url.rstrip("/") if public_base_url else None
        self._bound: tuple[InboundBatchWriter, IntakeWorker, Database] | None = None

    @property
    def configured(self) -> bool:
        """False when there is no auth token: every request is refused."""
        return self._validator is not None

    def bind(self, writer: InboundBatchWriter, worker: IntakeWorker, database: Database) -> None:
        """Attach the storage and the worker once they exist (routes are added before)."""
        self._bound = (writer, worker, database)

    def _parts(self) -> tuple[InboundBatchWriter, IntakeWorker, Database]:
        if self._bound is None:
            raise web.HTTPServiceUnavailable(text="the desk is starting")
        return self._bound

    def add_routes(self, app: web.Application) -> None:
        """Register the three endpoints on ``app``."""
        app.router.add_post("/sms/inbound", self.inbound)
        app.router.add_post("/sms/fallback", self.inbound)
        app.router.add_post("/sms/status", self.status)

    async def inbound(self, request: web.Request) -> web.Response:
        """A resident's text: verify, store, answer."""
        form = await self._verified_form(request)
        sid, sender = form.get("MessageSid", ""), form.get("From", "")
        if not _MESSAGE_SID.fullmatch(sid) or not sender:
            logger.warning("SMS webhook without a valid MessageSid or From refused")
            raise web.HTTPBadRequest(text="MessageSid and From are required")
        body = form.get("Body", "")
        message = IncomingMessage(
            channel=CHANNEL,
            external_id=sid,
            sender=sender,
            text=body,
            raw=_payload(form),
            media_count=_int(form.get("NumMedia", "0")),
            provider_keyword=form.get("OptOutType") or _carrier_keyword(body),
        )
        writer, worker, database = self._parts()
        recorded = await writer.record(InboundRecord(CHANNEL, sid, sender, body, message.raw))
        if recorded.new:
            return twiml(await worker.submit_and_wait(recorded.inbound_id, message))
        return twiml(await _replay(database, recorded.inbound_id))

    async def status(self, request: web.Request) -> web.Response:
        """A delivery-status callback: the outbox row's status moves forward only."""
        form = await self._verified_form(request)
        sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
        if not _MESSAGE_SID.fullmatch(sid) or not status:
            raise web.HTTPBadRequest(text="MessageSid and MessageStatus are required")
        async with self._parts()[2].transaction() as uow:
            changed = await uow.outbox.record_delivery(
                sid, status.lower(), form.get("ErrorCode") or None
            )
        if not changed:
            logger.debug(
                "status %s for %s changed nothing (stale, repeated or unknown)", status, sid
            )
        return web.Response(status=204)

    async def _verified_form(self, request: web.Request) -> MultiDictProxy[str]:
        """The form fields, if Twilio signed them; 403 (nothing read further) if not."""
        if self._validator is None:
            raise web.HTTPForbidden(text="SMS channel is not configured (no TWILIO_AUTH_TOKEN)")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise web.HTTPForbidden(text="missing X-Twilio-Signature")
        form = _text_fields(await request.post())
        if not self._validator.validate(self._called_url(request), form, signature):
            logger.warning("SMS webhook with a bad signature refused (%s)", request.path)
            raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
        return form

    def _called_url(self, request: web.Request) -> str:
        """The URL Twilio signed: public base URL + path and query exactly as received."""
        if self._base_url is not None:
            return self._base_url + request.raw_path
        return str(request.url)


async def _replay(database: Database, inbound_id: int) -> str | None:
    """A provider's retry: the same reply if it went in a response, else nothing."""
    async with database.reading() as uow:
        stored = await uow.inbound.get(inbound_id)
    if stored is None or not stored.reply_inline:
        return None
    return stored.reply_text


def _text_fields(post: MultiDictProxy[Any]) -> MultiDictProxy[str]:
    """Every text field, repeated names kept (they are signed too); file parts never come."""
    return MultiDictProxy(MultiDict((k, v) for k, v in post.items() if isinstance(v, str)))


def _payload(form: MultiDictProxy[str]) -> dict[str, Any]:
    """The fields kept with the message (one value per name; Twilio sends one)."""
    return {key: form.get(key) for key in form}


def _carrier_keyword(body: str) -> str | None:
    """The body, if it is one of the keywords Twilio acts on and answers itself."""
    word = body.strip().rstrip(".!。！").lower()
    return word if word in TWILIO_KEYWORDS else None


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0
