"""The aiohttp application factory: the one place that builds and closes resources.

``create_app`` wires the engine, the desk, the outbox dispatcher and the HTTP
routes. Resources are opened in a ``cleanup_ctx`` and closed in reverse order
on shutdown; the dispatcher finishes its in-flight batch before the engine is
disposed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.channels.base import Sender
from bot.channels.sms_webhook import SmsWebhook
from bot.channels.twilio_sms import twilio_sender_from_settings
from bot.intake_worker import IntakeWorker
from bot.metrics import DeskMetrics
from bot.outbox import DispatcherPolicy, OutboxDispatcher
from bot.settings import Settings
from bot.startup import StartupError, load_classifier, open_database
from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.directory_sync import sync_directory
from handlers.inbound import handle_stored, process_pending
from handlers.nlp_setup import load_nlp
from storage.group_commit import InboundBatchWriter

logger = logging.getLogger(__name__)

DESK = web.AppKey("desk", Desk)
METRICS = web.AppKey("metrics", DeskMetrics)
DISPATCHER = web.AppKey("dispatcher", OutboxDispatcher)
INTAKE = web.AppKey("intake", IntakeWorker)
SMS = web.AppKey("sms", SmsWebhook)


def build_senders(settings: Settings) -> dict[str, Sender]:
    """The channel senders the settings enable; call inside the running loop.

    A half-configured channel stops the start (``StartupError`` naming the
    setting), rather than running with messages that can never leave.
    """
    senders: dict[str, Sender] = {}
    if settings.telegram_bot_token is None:
        logger.warning("TELEGRAM_BOT_TOKEN is not set: the Telegram channel is off")
    try:
        sms = twilio_sender_from_settings(settings)
    except ValueError as exc:
        raise StartupError(f"SMS channel: {exc}") from exc
    if sms is None:
        logger.warning("TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN not set: the SMS channel is off")
    else:
        senders[sms.channel] = sms
    return senders


async def close_senders(senders: Mapping[str, Sender]) -> None:
    """Close the senders that hold connections (their HTTP sessions)."""
    for sender in senders.values():
        close = getattr(sender, "close", None)
        if close is not None:
            await close()


def create_app(settings: Settings, config: DeskConfig) -> web.Application:
    """The desk's web application, ready for an ``AppRunner``."""
    metrics = DeskMetrics()
    app = web.Application(client_max_size=256 * 1024, middlewares=[count_requests(metrics)])
    app[METRICS] = metrics
    token = settings.twilio_auth_token
    sms = SmsWebhook(
        auth_token=token.get_secret_value() if token is not None else None,
        public_base_url=str(settings.public_base_url) if settings.public_base_url else None,
    )
    # Routes exist from the start (a frozen router takes no more); without a
    # token they refuse every request.
    sms.add_routes(app)
    app[SMS] = sms

    async def resources(app: web.Application) -> AsyncIterator[None]:
        # jieba's dictionary is built at start, not on the first resident's
        # message, in a thread while the database is opened and migrated.
        jieba_ready = asyncio.create_task(asyncio.to_thread(load_nlp, config))
        try:
            database = await open_database(
                settings.database_url, migrate=settings.database_auto_migrate
            )
        finally:
            await jieba_ready
        try:
            classifier = await asyncio.to_thread(load_classifier, settings.classifier_model, config)
            await sync_directory(database, config)
            senders = build_senders(settings)
            dispatcher = OutboxDispatcher(
                database,
                senders,
                DispatcherPolicy.from_settings(settings),
                metrics=metrics,
            )
            app[DISPATCHER] = dispatcher
            desk = Desk.build(database, config, classifier, on_outbox=dispatcher.wake)
            app[DESK] = desk
            # Messages stored but not processed when a previous process died.
            await process_pending(desk)
            writer = InboundBatchWriter(database)
            intake = IntakeWorker(
                desk,
                handle_stored,
                inline_backlog=settings.sms_inline_backlog,
                reply_wait_seconds=settings.sms_reply_wait_seconds,
                # Under a flood, a ticket at least every second; between floods, at once.
                yield_to_intake=lambda: writer.wait_idle(at_most_seconds=1.0),
                # Older than a minute: not a message still on its way to the queue.
                sweep=lambda: process_pending(desk, older_than=timedelta(minutes=1)),
            )
            app[INTAKE] = intake
            intake.start()
            sms.bind(writer, intake, database)
            stop = asyncio.Event()
            task = (
                asyncio.create_task(dispatcher.run(stop), name="outbox-dispatcher")
                if settings.outbox_dispatch
                else None
            )
            yield
            # No request is in flight any more: store what is queued, answer it.
            await writer.close()
            await intake.stop()
            stop.set()
            dispatcher.wake()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await close_senders(senders)
        finally:
            await database.dispose()

    app.cleanup_ctx.append(resources)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    return app


def count_requests(metrics: DeskMetrics) -> Middleware:
    """Count every request by route template (never the raw path) and status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            metrics.http_requests.labels(route=name, status=str(exc.status)).inc()
            raise
        metrics.http_requests.labels(route=name, status=str(response.status)).inc()
        return response

    return middleware


async def healthz(request: web.Request) -> web.Response:
    """Liveness and readiness: the database answers a query."""
    desk = request.app[DESK]
    try:
        async with desk.database.reading() as uow:
            await uow.tickets.count()
    except Exception:
        logger.exception("health check: database query failed")
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ok"})


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus text exposition of the desk's own registry."""
    metrics = request.app[METRICS]
    async with request.app[DESK].database.reading() as uow:
        metrics.set_snapshot(
            await uow.tickets.count_by_status(), await uow.outbox.count_by_status()
        )
    return web.Response(body=metrics.render(), headers={"Content-Type": metrics.content_type})
