"""The aiohttp app: health, metrics and the dispatcher's life cycle, in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from test_trained import examples as training_examples

from bot.app import DESK, DISPATCHER, create_app
from bot.settings import Settings
from bot.startup import StartupError
from handlers.desk_config import DeskConfig
from handlers.intake import handle_register
from handlers.messages import IncomingMessage
from nlp.trained import save_model, train
from storage.repositories.outbox import DEAD


@pytest.fixture
async def client(database_url: str, desk_config: DeskConfig) -> AsyncIterator[TestClient]:
    """A test client over the real app on a fresh database (migrated at start-up)."""
    settings = Settings(
        database_url=database_url,
        database_auto_migrate=True,
        # The test drives the dispatcher itself, so nothing races it.
        outbox_dispatch=False,
        _env_file=None,
    )
    app = create_app(settings, desk_config)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_healthz_answers_ok_once_started(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_metrics_count_tickets_and_outbox_rows_by_status(client: TestClient) -> None:
    desk = client.server.app[DESK]
    await handle_register(
        desk, IncomingMessage("sms", "SM-metrics-1", "+8613800000002", "小区电梯坏了，物业不管")
    )
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = (await response.text()).splitlines()
    assert 'tickets{status="assigned"} 1.0' in lines
    # The resident's card and the department's notice; the running dispatcher may
    # already have settled them, so count every status.
    outbox = [line for line in lines if line.startswith("outbox_messages{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in outbox) == 2.0
    assert any(line.startswith("# TYPE outbox_sent_total counter") for line in lines)
    # Requests are counted by route template; this scrape is counted after it renders.
    second = (await (await client.get("/metrics")).text()).splitlines()
    assert 'http_requests_total{route="/metrics",status="200"} 1.0' in second
    assert (await client.get("/no/such/page")).status == 404
    third = (await (await client.get("/metrics")).text()).splitlines()
    assert 'http_requests_total{route="unmatched",status="404"} 1.0' in third


async def test_messages_for_unconfigured_channels_become_visible_dead_letters(
    client: TestClient,
) -> None:
    # No Telegram token, no Twilio credentials: nothing can be sent, and nothing
    # may vanish either, so the rows end up as dead letters an operator can retry.
    app = client.server.app
    desk = app[DESK]
    result = await handle_register(
        desk, IncomingMessage("sms", "SM-app-1", "+8613800000001", "小区电梯坏了，物业不管")
    )
    assert result.ticket_number is not None
    handled = await app[DISPATCHER].run_once()
    assert handled >= 1
    async with desk.database.reading() as uow:
        dead = await uow.outbox.with_status(DEAD)
    assert {row.channel for row in dead} == {"sms", "telegram"}
    assert all(
        "sms" in (row.last_error or "") or "telegram" in (row.last_error or "") for row in dead
    )


async def test_serve_uses_a_configured_model_with_keyword_fallback(
    database_url: str, desk_config: DeskConfig, tmp_path: Path
) -> None:
    texts, labels = training_examples()
    model_path = tmp_path / "model.npz"
    save_model(train(texts, labels), model_path)
    settings = Settings(
        database_url=database_url,
        database_auto_migrate=True,
        outbox_dispatch=False,
        classifier_model=model_path,
        _env_file=None,
    )
    async with TestClient(TestServer(create_app(settings, desk_config))) as client:
        assert client.server.app[DESK].router.classifier.name == "trained+keywords"


async def test_an_unreadable_model_stops_the_start(
    database_url: str, desk_config: DeskConfig, tmp_path: Path
) -> None:
    bogus = tmp_path / "model.npz"
    bogus.write_bytes(b"not a model")
    settings = Settings(
        database_url=database_url,
        database_auto_migrate=True,
        outbox_dispatch=False,
        classifier_model=bogus,
        _env_file=None,
    )
    runner = web.AppRunner(create_app(settings, desk_config))
    with pytest.raises(StartupError, match=f"cannot load classifier model {bogus}"):
        await runner.setup()
    await runner.cleanup()
