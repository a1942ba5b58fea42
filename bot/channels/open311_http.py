"""The HTTP front door: Open311 GeoReport v2 under ``/open311/v2/``, in JSON and XML.

Endpoints (``.json`` or ``.xml``; XML is the standard's required format):

- ``GET services``, ``GET services/{code}``: the configured categories;
- ``POST requests`` (form-encoded, with ``api_key``): a complaint, answered
  with ``service_request_id`` (the ticket number) and ``service_notice`` (the
  service card). ``service_code`` may be left out, our extension: the
  classifier chooses. The same ``Idempotency-Key`` header twice gives the
  same ticket;
- ``GET requests`` and ``GET requests/{id}``: status, notes, department,
  times and place, never a contact (``handlers.open311`` says what is shown);
- ``GET openapi.json``: the OpenAPI description of all of this.

Errors have the standard's shape (``[{"code": 400, "description": "..."}]``,
or ``<errors>`` in XML) and say precisely what is wrong. A bad or revoked key
is 403, a body over ``MAX_BODY`` 413, an ``Idempotency-Key`` reused for a
different request 422, and a client over its rate 429 with
``Retry-After``. The rate is per key (per address for GETs without one) and
per process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from aiohttp import web

from bot.channels.open311_openapi import openapi_document
from bot.rate_limit import KeyRateLimiter
from handlers.api_keys import ApiClient, authenticate
from handlers.context import Desk
from handlers.open311 import (
    AttributeView,
    Open311Error,
    RequestView,
    ServiceView,
    file_request,
    find_requests,
    parse_filter,
    parse_new_request,
    request_by_id,
    service_definition,
    services,
)
from storage.models import DESK_TZ

logger = logging.getLogger(__name__)

PREFIX: Final = "/open311/v2"
MAX_BODY: Final = 16 * 1024
MAX_IDEMPOTENCY_KEY: Final = 100
FORM: Final = "application/x-www-form-urlencoded"
_FORMAT: Final = "{fmt:json|xml}"
# A client that may file (its key) or only read (its address).
_ANONYMOUS: Final = ApiClient(id=0, name="anonymous")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RateLimited(Open311Error):
    """429: the client is over its rate; ``retry_after`` whole seconds until it is not."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, f"too many requests: retry after {retry_after}")
        self.retry_after = retry_after


class Open311Api:
    """The routes, bound to the desk once it is running."""

    def __init__(self, limiter: KeyRateLimiter) -> None:
        self._limiter = limiter
        self._desk: Desk | None = None

    def add_routes(self, app: web.Application) -> None:
        """Register every endpoint; they answer 503 until ``bind``."""
        app.router.add_get(f"{PREFIX}/services.{_FORMAT}", self._guarded(self._services))
        app.router.add_get(
            f"{PREFIX}/services/{{code:[^/]+}}.{_FORMAT}", self._guarded(self._definition)
        )
        app.router.add_get(f"{PREFIX}/requests.{_FORMAT}", self._guarded(self._requests))
        app.router.add_post(f"{PREFIX}/requests.{_FORMAT}", self._guarded(self._file))
        app.router.add_get(
            f"{PREFIX}/requests/{{number:[^/]+}}.{_FORMAT}", self._guarded(self._request)
        )
        app.router.add_get(f"{PREFIX}/openapi.json", self._openapi)

    def bind(self, desk: Desk) -> None:
        """Serve ``desk`` from now on."""
        self._desk = desk

    # ------------------------------------------------------------ endpoints

    async def _services(self, request: web.Request, desk: Desk) -> web.Response:
        return respond(request, [_service(s) for s in services(desk.config)], "services", "service")

    async def _definition(self, request: web.Request, desk: Desk) -> web.Response:
        code = request.match_info["code"]
        attributes = service_definition(desk.config, code)
        body = {"service_code": code, "attributes": [_attribute(a) for a in attributes]}
        return respond(request, body, "service_definition", "attribute")

    async def _requests(self, request: web.Request, desk: Desk) -> web.Response:
        client = await self._client(request, desk, required=False)
        wanted = parse_filter(request.query, desk.clock())
        found = await find_requests(desk, client, wanted)
        return respond(request, [_request(v) for v in found], "service_requests", "request")

    async def _request(self, request: web.Request, desk: Desk) -> web.Response:
        client = await self._client(request, desk, required=False)
        view = await request_by_id(desk, client, request.match_info["number"])
        return respond(request, [_request(view)], "service_requests", "request")

    async def _file(self, request: web.Request, desk: Desk) -> web.Response:
        form = await _form(request)
        client = await self._client(request, desk, required=True, form=form)
        idempotency_key = request.headers.get("Idempotency-Key", "").strip() or None
        if idempotency_key is not None and (
            len(idempotency_key) > MAX_IDEMPOTENCY_KEY or not idempotency_key.isprintable()
        ):
            raise Open311Error(
                400, f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters"
            )
        new = parse_new_request(desk.config, form)
        filed = await file_request(desk, client, new, idempotency_key)
        body = [
            {"service_request_id": filed.service_request_id, "service_notice": filed.service_notice}
        ]
        status = 200 if filed.replayed else 201
        return respond(request, body, "service_requests", "request", status=status)

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(), dumps=_dumps)

    # -------------------------------------------------------------- helpers

    def _guarded(self, endpoint: Callable[[web.Request, Desk], Awaitable[web.Response]]) -> Handler:
        """The endpoint with the desk, and every refusal in the standard's error shape."""

        async def handler(request: web.Request) -> web.StreamResponse:
            desk = self._desk
            if desk is None:
                return respond_error(
                    request, 503, "the desk is starting; try again in a few seconds"
                )
            try:
                return await endpoint(request, desk)
            except Open311Error as exc:
                response = respond_error(request, exc.status, exc.description)
                if isinstance(exc, RateLimited):
                    response.headers["Retry-After"] = str(exc.retry_after)
                return response

        return handler

    async def _client(
        self,
        request: web.Request,
        desk: Desk,
        *,
        required: bool,
        form: Mapping[str, str] | None = None,
    ) -> ApiClient:
        """The client behind ``api_key`` (form or query), rate-limited; 403 for a bad key."""
        key = (form or {}).get("api_key") or request.query.get("api_key")
        if not key:
            if required:
                raise Open311Error(403, "api_key is required to file a request")
            self._limit(f"address:{request.remote}")
            return _ANONYMOUS
        client = await authenticate(desk.database, key)
        if client is None:
            raise Open311Error(403, "api_key is not valid or has been revoked")
        self._limit(f"key:{client.id}")
        return client

    def _limit(self, who: str) -> None:
        wait = self._limiter.check(who)
        if wait is not None:
            raise RateLimited(max(1, round(wait + 0.5)))


async def _form(request: web.Request) -> Mapping[str, str]:
    """The POST form, refusing what is too large or not a form."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Open311Error(413, f"the request body is over {MAX_BODY // 1024} KB")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Open311Error(413, f"the request body is over {MAX_BODY // 1024} KB")
    kind = request.content_type
    if kind != FORM:
        raise Open311Error(400, f"send the form as {FORM}, not {kind or 'no content type'}")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Open311Error(400, "the form is not UTF-8") from None
    return dict(pairs)


# ---------------------------------------------------------------- rendering


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 with the desk's time zone: ``2026-11-29T10:00:00+08:00``."""
    return moment.astimezone(DESK_TZ).isoformat(timespec="seconds") if moment else None


def _service(view: ServiceView) -> dict[str, Any]:
    return asdict(view)


def _attribute(view: AttributeView) -> dict[str, Any]:
    body = asdict(view)
    body["values"] = [{"key": key, "name": name} for key, name in view.values]
    return body


def _request(view: RequestView) -> dict[str, Any]:
    return {
        "service_request_id": view.service_request_id,
        "status": view.status,
        "status_notes": view.status_notes,
        "service_name": view.service_name,
        "service_code": view.service_code,
        "description": view.description,
        "agency_responsible": view.agency_responsible,
        "service_notice": view.service_notice,
        "requested_datetime": _iso(view.requested_datetime),
        "updated_datetime": _iso(view.updated_datetime),
        "expected_datetime": _iso(view.expected_datetime),
        "address": view.address,
        "lat": view.lat,
        "long": view.long,
        "media_url": view.media_url,
        # Our extension: the desk's own status, in code and in words.
        "extended_attributes": {
            "desk_status": view.status_detail,
            "desk_status_label": view.status_label,
        },
    }


def respond(
    request: web.Request,
    body: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    root: str,
    item: str,
    *,
    status: int = 200,
) -> web.Response:
    """``body`` in the format the path asked for."""
    if request.match_info.get("fmt") == "xml":
        return web.Response(
            body=to_xml(body, root, item),
            status=status,
            content_type="text/xml",
            charset="utf-8",
        )
    return web.json_response(body, status=status, dumps=_dumps)


def respond_error(request: web.Request, status: int, description: str) -> web.Response:
    """The standard's error list, with one error."""
    return respond(
        request, [{"code": status, "description": description}], "errors", "error", status=status
    )


def to_xml(body: Sequence[Mapping[str, Any]] | Mapping[str, Any], root: str, item: str) -> bytes:
    """GeoReport's XML: a list as ``<root><item>…</item></root>``, a mapping as ``<root>…``."""
    element = ElementTree.Element(root)
    if isinstance(body, Mapping):
        _fill(element, body, item)
    else:
        for entry in body:
            _fill(ElementTree.SubElement(element, item), entry, item)
    return (
        b'<?xml version="1.0" encoding="utf-8"?>'
        + ElementTree.tostring(element, encoding="unicode").encode()
    )


def _fill(parent: ElementTree.Element, values: Mapping[str, Any], item: str) -> None:
    for name, value in values.items():
        child = ElementTree.SubElement(parent, name)
        if isinstance(value, Mapping):
            _fill(child, value, item)
        elif isinstance(value, list):
            singular = "value" if name == "values" else item
            for entry in value:
                _fill(ElementTree.SubElement(child, singular), entry, item)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
