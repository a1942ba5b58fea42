"""Open311 GeoReport v2 over HTTP: every endpoint in JSON and XML, errors, keys and privacy.

The real app (create_app) on a test server; requests filed through the API
go through the same intake as every channel.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from helpers import CONDUCT_TEXT, ROUTED_TEXT, load_ticket, register, staff_actor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sms_webhook import make_client

from bot.app import DESK
from handlers.api_keys import create_api_key, revoke_api_key
from handlers.desk_config import DeskConfig
from handlers.ticket_actions import handle_claim, handle_reply
from storage.models import DESK_TZ

Client = TestClient[web.Request, web.Application]
BASE = "/open311/v2"
PHONE = "+8613912345678"


@pytest.fixture
async def api(database_url: str, desk_config: DeskConfig) -> AsyncIterator[Client]:
    async with await make_client(database_url, desk_config) as client:
        yield client


async def key(api: Client, name: str = "city-app") -> str:
    return (await create_api_key(api.app[DESK].database, name)).key


def form(api_key: str, **fields: str) -> dict[str, str]:
    return {
        "api_key": api_key,
        "description": ROUTED_TEXT,
        "lat": "31.2304",
        "long": "121.4737",
        **fields,
    }


async def file(api: Client, data: dict[str, str], fmt: str = "json", **headers: str) -> Any:
    response = await api.post(f"{BASE}/requests.{fmt}", data=data, headers=headers)
    assert response.status in (200, 201), await response.text()
    return await response.json() if fmt == "json" else await response.text()


async def error(response: Any) -> tuple[int, str]:
    """The status and the one error description of a JSON error answer."""
    [body] = await response.json()
    assert body["code"] == response.status
    return response.status, body["description"]


# ------------------------------------------------------------------- services


async def test_services_list_every_category_in_json_and_xml(api: Client) -> None:
    config = api.app[DESK].config
    response = await api.get(f"{BASE}/services.json")
    assert response.status == 200
    listed = await response.json()
    assert [s["service_code"] for s in listed] == [c.code for c in config.categories]
    first = listed[0]
    assert first["type"] == "realtime" and first["group"] == "城乡建设"
    assert "住房" in first["description"] or "办理" in first["description"]
    # 城管执法 is a second-level category under 城乡建设.
    assert next(s for s in listed if s["service_code"] == "城管执法")["group"] == "城乡建设"

    xml = ElementTree.fromstring(await (await api.get(f"{BASE}/services.xml")).read())
    assert xml.tag == "services"
    assert [s.findtext("service_code") for s in xml.iter("service")] == [
        c.code for c in config.categories
    ]


async def test_service_definition_and_an_unknown_code(api: Client) -> None:
    response = await api.get(f"{BASE}/services/城乡建设.json")
    assert (await response.json())["service_code"] == "城乡建设"
    missing = await api.get(f"{BASE}/services/不存在.json")
    assert await error(missing) == (404, "service_code '不存在' is not a service of this desk")
    xml = ElementTree.fromstring(await (await api.get(f"{BASE}/services/不存在.xml")).read())
    assert xml.tag == "errors" and xml.findtext("error/code") == "404"


async def test_a_definition_lists_the_districts_in_json_and_xml(
    database_url: str, desk_config: DeskConfig
) -> None:
    districts = [{"name": "东城区", "aliases": ["东城"]}, {"name": "西城区"}]
    config = DeskConfig.model_validate({**desk_config.model_dump(), "districts": districts})
    async with await make_client(database_url, config) as api:
        [service] = [
            s
            for s in await (await api.get(f"{BASE}/services.json")).json()
            if s["service_code"] == "城乡建设"
        ]
        assert service["metadata"] is True
        definition = await (await api.get(f"{BASE}/services/城乡建设.json")).json()
        [attribute] = definition["attributes"]
        assert (attribute["code"], attribute["datatype"], attribute["required"]) == (
            "district",
            "singlevaluelist",
            False,
        )
        assert attribute["values"] == [
            {"key": "东城区", "name": "东城区"},
            {"key": "西城区", "name": "西城区"},
        ]
        xml = ElementTree.fromstring(await (await api.get(f"{BASE}/services/城乡建设.xml")).read())
        assert xml.tag == "service_definition"
        assert [v.findtext("key") for v in xml.iter("value")] == ["东城区", "西城区"]
        assert xml.findtext("attributes/attribute/variable") == "true"

        api_key = await key(api)
        [filed] = await file(api, form(api_key, **{"attribute[district]": "西城区"}))
        refused = await api.post(
            f"{BASE}/requests.json", data=form(api_key, **{"attribute[district]": "南城区"})
        )
        assert await error(refused) == (
            400,
            "attribute[district] '南城区' is not one of its values",
        )
        ticket = await load_ticket(api.app[DESK], filed["service_request_id"])
        assert ticket.text.startswith("西城区：")


# ------------------------------------------------------------------- filing


async def test_a_request_is_filed_routed_and_found_again(api: Client) -> None:
    api_key = await key(api)
    [filed] = await file(api, form(api_key, phone=PHONE, first_name="明", last_name="王"))
    number = filed["service_request_id"]
    assert "受理编号" in filed["service_notice"] and number in filed["service_notice"]

    response = await api.get(f"{BASE}/requests/{number}.json")
    [found] = await response.json()
    assert found["status"] == "open"
    assert found["agency_responsible"] == "市住房和城乡建设局"
    assert found["service_code"] == "城乡建设"
    assert found["description"] == ROUTED_TEXT
    assert (found["lat"], found["long"]) == (31.2304, 121.4737)
    assert found["expected_datetime"].endswith("+08:00")
    assert found["extended_attributes"]["desk_status"] == "assigned"
    # No contact, ever: not the phone, not the name.
    text = str(found)
    assert PHONE not in text and "13912345678" not in text and "王" not in text

    # The department's interim reply is the request's status_notes, in the list too.
    clerk = await staff_actor(api.app[DESK], 501, "zhujian")
    await handle_claim(api.app[DESK], number, clerk)
    await handle_reply(api.app[DESK], number, clerk, "已联系物业，明天维修")
    [listed] = await (await api.get(f"{BASE}/requests.json")).json()
    assert listed["status_notes"] == "最新答复：已联系物业，明天维修"
    assert listed["extended_attributes"]["desk_status"] == "in_progress"


async def test_a_service_code_routes_without_the_classifier(api: Client) -> None:
    api_key = await key(api)
    [filed] = await file(
        api, form(api_key, description="门口一直有人占道摆摊", service_code="环境保护")
    )
    [found] = await (await api.get(f"{BASE}/requests/{filed['service_request_id']}.json")).json()
    assert found["service_code"] == "环境保护"
    assert found["agency_responsible"] == "市生态环境局"


async def test_the_same_idempotency_key_gives_the_same_request(api: Client) -> None:
    api_key = await key(api)
    first = await api.post(
        f"{BASE}/requests.json", data=form(api_key), headers={"Idempotency-Key": "abc-1"}
    )
    again = await api.post(
        f"{BASE}/requests.json", data=form(api_key), headers={"Idempotency-Key": "abc-1"}
    )
    other = await api.post(f"{BASE}/requests.json", data=form(api_key))
    assert (first.status, again.status, other.status) == (201, 200, 201)
    ids = [(await r.json())[0]["service_request_id"] for r in (first, again, other)]
    assert ids[0] == ids[1] != ids[2]
    async with api.app[DESK].database.reading() as uow:
        assert await uow.tickets.count() == 2

    # The same key for something else is a client bug, not a retry.
    reused = await api.post(
        f"{BASE}/requests.json",
        data=form(api_key, description="路灯坏了一个月"),
        headers={"Idempotency-Key": "abc-1"},
    )
    assert await error(reused) == (
        422,
        "Idempotency-Key 'abc-1' was already used for a different request; "
        "send a new key with a new request",
    )
    async with api.app[DESK].database.reading() as uow:
        assert await uow.tickets.count() == 2


async def test_filing_in_xml(api: Client) -> None:
    api_key = await key(api)
    xml = ElementTree.fromstring(await file(api, form(api_key), fmt="xml"))
    assert xml.tag == "service_requests"
    assert xml.findtext("request/service_request_id")


@pytest.mark.parametrize(
    ("fields", "status", "description"),
    [
        ({"service_code": "无此类"}, 400, "service_code '无此类' is not a service of this desk"),
        ({"description": "  "}, 400, "description is required: say what the problem is"),
        ({"lat": "", "long": ""}, 400, "a location is required: lat and long, or address_string"),
        ({"lat": "91", "long": "121"}, 400, "lat 91 is outside -90..90"),
        ({"lat": "北纬", "long": "121"}, 400, "lat '北纬' is not a number"),
        ({"long": ""}, 400, "lat and long go together: give both or neither"),
        ({"media_url": "ftp://x/y.jpg"}, 400, "media_url must be an http or https URL"),
        ({"phone": "call me"}, 400, "phone 'call me' is not a telephone number"),
        (
            {"attribute[colour]": "red"},
            400,
            "attribute[colour] is not an attribute of this service",
        ),
    ],
)
async def test_bad_requests_are_refused_precisely(
    api: Client, fields: dict[str, str], status: int, description: str
) -> None:
    api_key = await key(api)
    response = await api.post(f"{BASE}/requests.json", data=form(api_key, **fields))
    assert await error(response) == (status, description)
    async with api.app[DESK].database.reading() as uow:
        assert await uow.tickets.count() == 0


async def test_keys_missing_wrong_and_revoked_are_refused(api: Client) -> None:
    api_key = await key(api)
    missing = await api.post(f"{BASE}/requests.json", data={"description": ROUTED_TEXT})
    assert await error(missing) == (403, "api_key is required to file a request")
    wrong = await api.post(f"{BASE}/requests.json", data=form("not-a-key"))
    assert await error(wrong) == (403, "api_key is not valid or has been revoked")
    assert await revoke_api_key(api.app[DESK].database, "city-app")
    revoked = await api.post(f"{BASE}/requests.json", data=form(api_key))
    assert await error(revoked) == (403, "api_key is not valid or has been revoked")


async def test_a_body_over_the_limit_is_413(api: Client) -> None:
    api_key = await key(api)
    response = await api.post(
        f"{BASE}/requests.json", data=form(api_key, description="长" * 20_000)
    )
    assert await error(response) == (413, "the request body is over 16 KB")


async def test_a_client_over_its_rate_gets_429_with_retry_after(
    database_url: str, desk_config: DeskConfig
) -> None:
    async with await make_client(
        database_url, desk_config, open311_requests_per_minute=1, open311_burst=2
    ) as api:
        api_key = await key(api)
        statuses = []
        for _ in range(3):
            response = await api.post(f"{BASE}/requests.json", data=form(api_key))
            statuses.append(response.status)
        assert statuses == [201, 201, 429]
        assert int(response.headers["Retry-After"]) >= 1
        assert (await error(response))[1].startswith("too many requests")


# ----------------------------------------------------------------- looking up


async def test_requests_filter_by_status_code_and_dates(api: Client) -> None:
    api_key = await key(api)
    [one] = await file(api, form(api_key))
    [two] = await file(api, form(api_key, service_code="环境保护"))
    listed = await (await api.get(f"{BASE}/requests.json")).json()
    assert [r["service_request_id"] for r in listed] == [
        two["service_request_id"],
        one["service_request_id"],
    ]
    by_code = await (await api.get(f"{BASE}/requests.json?service_code=环境保护")).json()
    assert [r["service_request_id"] for r in by_code] == [two["service_request_id"]]
    closed = await (await api.get(f"{BASE}/requests.json?status=closed")).json()
    assert closed == []
    ids = f"{one['service_request_id']},{two['service_request_id']}"
    both = await (await api.get(f"{BASE}/requests.json", params={"service_request_id": ids})).json()
    assert len(both) == 2

    now = api.app[DESK].clock().astimezone(DESK_TZ)
    window = {
        "start_date": (now - timedelta(days=91)).isoformat(),
        "end_date": now.isoformat(),
    }
    too_long = await api.get(f"{BASE}/requests.json", params=window)
    assert await error(too_long) == (400, "start_date and end_date may be at most 90 days apart")
    naive = await api.get(f"{BASE}/requests.json", params={"start_date": "2026-11-01T00:00:00"})
    assert (await error(naive))[1].startswith("start_date '2026-11-01T00:00:00' needs a time zone")
    past = await api.get(
        f"{BASE}/requests.json",
        params={"start_date": "2020-01-01T00:00:00+08:00", "end_date": "2020-02-01T00:00:00+08:00"},
    )
    assert await past.json() == []


async def test_other_channels_and_conduct_complaints_show_no_text(api: Client) -> None:
    desk = api.app[DESK]
    texted = await register(desk, ROUTED_TEXT)
    conduct_key = await key(api, "filer")
    [conduct] = await file(api, form(conduct_key, description=CONDUCT_TEXT))
    stranger_key = await key(api, "someone-else")

    [sms] = await (await api.get(f"{BASE}/requests/{texted}.json")).json()
    assert sms["description"] is None and sms["agency_responsible"] == "市住房和城乡建设局"

    number = conduct["service_request_id"]
    for api_key in (None, stranger_key):
        params = {"api_key": api_key} if api_key else {}
        [seen] = await (await api.get(f"{BASE}/requests/{number}.json", params=params)).json()
        assert seen["description"] is None and seen["agency_responsible"] is None
    [own] = await (
        await api.get(f"{BASE}/requests/{number}.json", params={"api_key": conduct_key})
    ).json()
    assert own["description"] == CONDUCT_TEXT


async def test_requests_in_xml_carry_the_same_fields(api: Client) -> None:
    api_key = await key(api)
    [filed] = await file(api, form(api_key, media_url="https://img.example.cn/1.jpg"))
    number = filed["service_request_id"]
    xml = ElementTree.fromstring(await (await api.get(f"{BASE}/requests/{number}.xml")).read())
    assert xml.tag == "service_requests"
    request = xml.find("request")
    assert request is not None
    assert request.findtext("service_request_id") == number
    assert request.findtext("status") == "open"
    assert request.findtext("media_url") == "https://img.example.cn/1.jpg"
    assert request.findtext("lat") == "31.2304"
    assert request.findtext("extended_attributes/desk_status") == "assigned"
    assert request.findtext("status_notes") == ""  # null is an empty element
    listed = ElementTree.fromstring(await (await api.get(f"{BASE}/requests.xml")).read())
    assert [r.findtext("service_request_id") for r in listed.iter("request")] == [number]
    bad = ElementTree.fromstring(
        await (await api.get(f"{BASE}/requests.xml", params={"status": "maybe"})).read()
    )
    assert (bad.tag, bad.findtext("error/code")) == ("errors", "400")
    assert bad.findtext("error/description") == "status 'maybe' is not open or closed"


async def test_a_missing_request_is_404(api: Client) -> None:
    response = await api.get(f"{BASE}/requests/123456789.json")
    assert await error(response) == (404, "no service request '123456789'")


async def test_the_openapi_document_describes_every_route(api: Client) -> None:
    document = await (await api.get(f"{BASE}/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/open311/v2/services.{format}",
        "/open311/v2/services/{service_code}.{format}",
        "/open311/v2/requests.{format}",
        "/open311/v2/requests/{service_request_id}.{format}",
    }


# ------------------------------------------------------------ no server errors

_fuzz_keys = itertools.count(1)
_text = st.text(max_size=40)
_fields = st.dictionaries(
    st.sampled_from(
        [
            "service_code",
            "description",
            "lat",
            "long",
            "address_string",
            "phone",
            "email",
            "first_name",
            "last_name",
            "media_url",
            "attribute[district]",
            "api_key",
        ]
    ),
    _text,
)
_query = st.dictionaries(
    st.sampled_from(["service_request_id", "service_code", "start_date", "end_date", "status"]),
    _text,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=_fields, query=_query, fmt=st.sampled_from(["json", "xml"]), number=_text)
async def test_no_input_makes_a_server_error(
    api: Client, fields: dict[str, str], query: dict[str, str], fmt: str, number: str
) -> None:
    if fields.get("api_key") == "":
        # Sometimes a live key, so the fields behind the key check are reached too.
        fields["api_key"] = await key(api, f"fuzz-{next(_fuzz_keys)}")
    posted = await api.post(f"{BASE}/requests.{fmt}", data=fields)
    listed = await api.get(f"{BASE}/requests.{fmt}", params=query)
    one = await api.get(f"{BASE}/requests/{number.replace('/', '')}.{fmt}")
    for response in (posted, listed, one):
        assert response.status < 500, await response.text()
