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
from telegram.error import InvalidToken, TelegramError
from telegram.request import BaseRequest

from bot.channels.base import Sender
from bot.channels.open311_http import Open311Api
from bot.channels.sms_webhook import SmsWebhook
from bot.channels.telegram_bot import UPDATE_CHANNEL, WEBHOOK_PATH, TelegramRunning
from bot.channels.telegram_sender import bot_api_base_url, telegram_sender_from_settings
from bot.channels.twilio_sms import twilio_sender_from_settings
from bot.intake_worker import IntakeWorker
from bot.metrics import DeskMetrics
from bot.outbox import DispatcherPolicy, OutboxDispatcher
from bot.rate_limit import KeyRateLimiter
from bot.settings import Settings
from bot.startup import StartupError, load_classifier, open_database
from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.directory_sync import sync_directory
from handlers.inbound import ProcessStored, handle_stored, process_pending
from handlers.messages import IncomingMessage, IntakeResult
from handlers.nlp_setup import load_nlp
from storage.group_commit import InboundBatchWriter

logger = logging.getLogger(__name__)

DESK = web.AppKey("desk", Desk)
METRICS = web.AppKey("metrics", DeskMetrics)
DISPATCHER = web.AppKey("dispatcher", OutboxDispatcher)
INTAKE = web.AppKey("intake", IntakeWorker)
SMS = web.AppKey("sms", SmsWebhook)
TELEGRAM = web.AppKey("telegram", TelegramRunning)
OPEN311 = web.AppKey("open311", Open311Api)


def build_senders(
    settings: Settings, *, telegram_request: BaseRequest | None = None
) -> dict[str, Sender]:
    """The channel senders the settings enable; call inside the running loop.

    A half-configured channel stops the start (``StartupError`` naming the
    setting), rather than running with messages that can never leave.
    """
    senders: dict[str, Sender] = {}
    try:
        telegram = telegram_sender_from_settings(settings, request=telegram_request)
    except ValueError as exc:
        raise StartupError(f"Telegram channel: {exc}") from exc
    if telegram is None:
        logger.warning("TELEGRAM_BOT_TOKEN is not set: the Telegram channel is off")
    else:
        senders[telegram.channel] = telegram
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


def create_app(
    settings: Settings,
    config: DeskConfig,
    *,
    telegram_request: BaseRequest | None = None,
    telegram_polling: bool = True,
) -> web.Application:
    """The desk's web application, ready for an ``AppRunner``.

    ``telegram_request`` replaces python-telegram-bot's HTTP layer (tests
    pass a fake Bot API); ``telegram_polling=False`` keeps a desk without a
    webhook URL from polling (tests feed updates themselves).
    """
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
    open311 = Open311Api(
        KeyRateLimiter(settings.open311_requests_per_minute, settings.open311_burst)
    )
    open311.add_routes(app)
    app[OPEN311] = open311

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
            senders = build_senders(settings, telegram_request=telegram_request)
            dispatcher = OutboxDispatcher(
                database,
                senders,
                DispatcherPolicy.from_settings(settings),
                metrics=metrics,
            )
            app[DISPATCHER] = dispatcher
            desk = Desk.build(database, config, classifier, on_outbox=dispatcher.wake)
            app[DESK] = desk
            open311.bind(desk)
            telegram = await _start_telegram(settings, desk, telegram_request, telegram_polling)
            if telegram is not None:
                app[TELEGRAM] = telegram
            process = _processor(telegram)
            # Messages stored but not processed when a previous process died.
            await process_pending(desk, process=process)
            writer = InboundBatchWriter(database)
            intake = IntakeWorker(
                desk,
                process,
                inline_backlog=settings.sms_inline_backlog,
                reply_wait_seconds=settings.sms_reply_wait_seconds,
                # Under a flood, a ticket at least every second; between floods, at once.
                yield_to_intake=lambda: writer.wait_idle(at_most_seconds=1.0),
                # Older than a minute: not a message still on its way to the queue.
                sweep=lambda: process_pending(
                    desk, older_than=timedelta(minutes=1), process=process
                ),
            )
            app[INTAKE] = intake
            intake.start()
            sms.bind(writer, intake, database)
            if telegram is not None:
                telegram.front.bind(writer, intake)
            stop = asyncio.Event()
            task = (
                asyncio.create_task(dispatcher.run(stop), name="outbox-dispatcher")
                if settings.outbox_dispatch
                else None
            )
            yield
            # No request is in flight any more: store what is queued, answer it.
            if telegram is not None:
                await telegram.stop()  # no more polled updates
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
    app.router.add_post(WEBHOOK_PATH, telegram_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    return app


async def _start_telegram(
    settings: Settings, desk: Desk, request: BaseRequest | None, polling: bool
) -> TelegramRunning | None:
    """The Telegram channel's inbound half, when a bot token is configured."""
    token = settings.telegram_bot_token
    if token is None:
        return None
    webhook = settings.telegram_webhook_url
    base = settings.telegram_api_base_url
    try:
        return await TelegramRunning.start(
            desk,
            token.get_secret_value(),
            webhook_url=str(webhook) if webhook is not None else None,
            base_url=bot_api_base_url(str(base)) if base is not None else None,
            request=request,
            poll=polling,
        )
    except InvalidToken:
        # Its text quotes the token: never let it reach a log or a terminal.
        raise StartupError(
            "Telegram rejected TELEGRAM_BOT_TOKEN: check it with @BotFather"
        ) from None
    except TelegramError as exc:
        raise StartupError(f"Telegram: {type(exc).__name__} at start-up: {exc}") from exc


def _processor(telegram: TelegramRunning | None) -> ProcessStored:
    """How the intake worker handles a stored message: by the channel that stored it."""

    async def process(desk: Desk, inbound_id: int, message: IncomingMessage) -> IntakeResult:
        if message.channel == UPDATE_CHANNEL:
            if telegram is None:
                # Kept, unhandled, for when the bot token is configured again.
                logger.warning("a stored Telegram update waits: the Telegram channel is off")
                return IntakeResult(reply="", ticket_number=None, duplicate=True)
            return await telegram.front.process_stored(desk, inbound_id, message)
        return await handle_stored(desk, inbound_id, message)

    return process


async def telegram_webhook(request: web.Request) -> web.Response:
    """Telegram's webhook; 404 while the channel is off."""
    telegram = request.app.get(TELEGRAM)
    if telegram is None:
        raise web.HTTPNotFound(text="the Telegram channel is off (no TELEGRAM_BOT_TOKEN)")
    return await telegram.front.webhook(request)


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
