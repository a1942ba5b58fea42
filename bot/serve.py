"""``complaint-desk serve``: run the aiohttp server until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal

from aiohttp import web

from bot.app import create_app
from bot.settings import Settings
from bot.startup import StartupError
from handlers.desk_config import DeskConfig

logger = logging.getLogger(__name__)


async def serve(settings: Settings, config: DeskConfig, host: str, port: int) -> None:
    """Serve until a stop signal, then shut down cleanly (dispatcher first, then database)."""
    runner = web.AppRunner(create_app(settings, config), handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} is already in use: stop the other process "
                    "or choose another with --port"
                ) from exc
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        logger.info("complaint-desk serving on http://%s:%d", host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        logger.info("stop signal received; shutting down")
    finally:
        await runner.cleanup()
