"""The OpenAPI 3 description of the Open311 endpoints, served at ``/open311/v2/openapi.json``.

Written by hand to match ``bot.channels.open311_http`` and ``handlers.open311``;
tests/test_open311.py checks every described path answers and that a
property-based run over these parameters finds no server error.
"""

from __future__ import annotations

from typing import Any

_FORMAT = {
    "name": "format",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["json", "xml"]},
}
_JURISDICTION = {
    "name": "jurisdiction_id",
    "in": "query",
    "required": False,
    "description": "Accepted and ignored: this desk serves one jurisdiction.",
    "schema": {"type": "string"},
}
_API_KEY_QUERY = {
    "name": "api_key",
    "in": "query",
    "required": False,
    "description": "With it, a client also sees the conduct complaints it filed in full.",
    "schema": {"type": "string"},
}
_ERRORS = {
    "description": "The standard's error list",
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "description"],
                    "properties": {
                        "code": {"type": "integer"},
                        "description": {"type": "string"},
                    },
                },
            }
        },
        "text/xml": {"schema": {"type": "string"}},
    },
}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_REQUEST = {
    "type": "object",
    "properties": {
        "service_request_id": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "status_notes": _NULLABLE_STRING,
        "service_name": _NULLABLE_STRING,
        "service_code": _NULLABLE_STRING,
        "description": {
            **_NULLABLE_STRING,
            "description": "Only for requests filed through this API; never a conduct "
            "complaint's, except to its filer.",
        },
        "agency_responsible": _NULLABLE_STRING,
        "service_notice": _NULLABLE_STRING,
        "requested_datetime": {"type": "string", "format": "date-time"},
        "updated_datetime": {"type": "string", "format": "date-time"},
        "expected_datetime": {**_NULLABLE_STRING, "format": "date-time"},
        "address": _NULLABLE_STRING,
        "lat": {"type": "number", "nullable": True},
        "long": {"type": "number", "nullable": True},
        "media_url": _NULLABLE_STRING,
        "extended_attributes": {
            "type": "object",
            "properties": {
                "desk_status": {"type": "string"},
                "desk_status_label": {"type": "string"},
            },
        },
    },
}


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": schema},
            "text/xml": {"schema": {"type": "string"}},
        },
    }


def openapi_document() -> dict[str, Any]:
    """The document (a fresh dict each time: callers may change theirs)."""
    errors = {str(code): _ERRORS for code in (400, 403, 404, 413, 422, 429, 503)}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "complaint-desk Open311 GeoReport v2",
            "version": "2",
            "description": "File and follow complaints without a chat or SMS account. "
            "Extensions: service_code may be omitted (the desk's classifier chooses); "
            "the Idempotency-Key header makes a repeated POST return the same request; "
            "extended_attributes carry the desk's own status.",
        },
        "paths": {
            "/open311/v2/services.{format}": {
                "get": {
                    "summary": "The services (complaint categories)",
                    "parameters": [_FORMAT, _JURISDICTION],
                    "responses": {
                        "200": _ok({"type": "array", "items": {"type": "object"}}, "Services"),
                        **errors,
                    },
                }
            },
            "/open311/v2/services/{service_code}.{format}": {
                "get": {
                    "summary": "One service's definition (its attributes)",
                    "parameters": [
                        {
                            "name": "service_code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        _FORMAT,
                        _JURISDICTION,
                    ],
                    "responses": {"200": _ok({"type": "object"}, "Definition"), **errors},
                }
            },
            "/open311/v2/requests.{format}": {
                "get": {
                    "summary": "Requests, newest first (at most 200)",
                    "parameters": [
                        _FORMAT,
                        _JURISDICTION,
                        _API_KEY_QUERY,
                        {
                            "name": "service_request_id",
                            "in": "query",
                            "description": "Comma-separated ticket numbers",
                            "schema": {"type": "string"},
                        },
                        {"name": "service_code", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "start_date",
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                        {
                            "name": "end_date",
                            "in": "query",
                            "description": "At most 90 days after start_date",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["open", "closed"]},
                        },
                    ],
                    "responses": {
                        "200": _ok({"type": "array", "items": _REQUEST}, "Requests"),
                        **errors,
                    },
                },
                "post": {
                    "summary": "File a request",
                    "parameters": [
                        _FORMAT,
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 100},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": ["api_key", "description"],
                                    "properties": {
                                        "api_key": {"type": "string"},
                                        "service_code": {"type": "string"},
                                        "description": {"type": "string"},
                                        "lat": {"type": "number"},
                                        "long": {"type": "number"},
                                        "address_string": {"type": "string"},
                                        "phone": {"type": "string"},
                                        "email": {"type": "string"},
                                        "first_name": {"type": "string"},
                                        "last_name": {"type": "string"},
                                        "media_url": {"type": "string"},
                                        "attribute[district]": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _ok({"type": "array", "items": {"type": "object"}}, "Filed"),
                        "200": _ok(
                            {"type": "array", "items": {"type": "object"}},
                            "Filed before with the same Idempotency-Key",
                        ),
                        **errors,
                    },
                },
            },
            "/open311/v2/requests/{service_request_id}.{format}": {
                "get": {
                    "summary": "One request",
                    "parameters": [
                        {
                            "name": "service_request_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        _FORMAT,
                        _JURISDICTION,
                        _API_KEY_QUERY,
                    ],
                    "responses": {
                        "200": _ok({"type": "array", "items": _REQUEST}, "The request"),
                        **errors,
                    },
                }
            },
        },
    }
