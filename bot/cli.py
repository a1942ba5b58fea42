"""The ``complaint-desk`` command: serve, migrate, demo, tickets, outbox, export, API keys.

Operator errors (bad config, unreachable database, port in use) print one
precise line and exit 2; a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from bot import admin_commands, classify_command, nlp_commands
from bot.config_file import ConfigFileError, load_desk_config
from bot.settings import Settings
from bot.startup import StartupError
from handlers.desk_config import DeskConfig

logger = logging.getLogger("complaint_desk")

EXIT_OPERATOR_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; ``complaint-desk --help`` shows every command."""
    parser = argparse.ArgumentParser(
        prog="complaint-desk",
        description="Front door of a government complaint centre (SMS, Telegram, HTTP).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "--config", metavar="FILE", help="desk TOML file (default: DESK_CONFIG or the built-in)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP server and the outbox dispatcher")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1 or HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080 or PORT)")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply all migrations (Alembic) to DATABASE_URL")

    commands.add_parser(
        "demo", help="tell a whole complaint's story on a throwaway database and exit"
    )
    classify_command.add_command(commands)

    ticket = commands.add_parser("ticket", help="look at tickets")
    ticket_commands = ticket.add_subparsers(dest="ticket_command", required=True, metavar="ACTION")
    show = ticket_commands.add_parser("show", help="a ticket with its audit trail and messages")
    show.add_argument("number", help="the ticket number (受理编号)")

    outbox = commands.add_parser("outbox", help="list outbound messages; retry dead letters")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", metavar="ACTION")
    listing = outbox_commands.add_parser("list", help="list messages (default: dead letters)")
    listing.add_argument("--status", default="dead", choices=["dead", "pending", "sending", "sent"])
    listing.add_argument("--limit", type=int, default=50)
    retry = outbox_commands.add_parser("retry", help="send dead letters again")
    retry.add_argument("ids", nargs="*", type=int, help="outbox ids (see `outbox list`)")
    retry.add_argument("--all", action="store_true", help="every dead letter")

    export = commands.add_parser("export", help="write the 台账 (ledger) to an Excel file")
    export.add_argument("--out", required=True, metavar="FILE", help="the .xlsx file to write")
    export.add_argument(
        "--from",
        dest="date_from",
        metavar="YYYY-MM-DD",
        help="first day registered, desk time (default: the 1st of the --to month)",
    )
    export.add_argument(
        "--to",
        dest="date_to",
        metavar="YYYY-MM-DD",
        help="last day registered, included (default: the last day of this month)",
    )
    export.add_argument("--department", metavar="CODE", help="only tickets this department leads")

    apikey = commands.add_parser("apikey", help="API keys of Open311 clients")
    apikey_commands = apikey.add_subparsers(dest="apikey_command", required=True, metavar="ACTION")
    create = apikey_commands.add_parser("create", help="issue a key for a client (shown once)")
    create.add_argument(
        "name", help="the client's name: letters, digits, - _ . and CJK, up to 100 characters"
    )
    revoke = apikey_commands.add_parser("revoke", help="stop a client's key from working")
    revoke.add_argument("name", help="the client's name (see `apikey list`)")
    apikey_commands.add_parser("list", help="every key: name, prefix, created, revoked")

    # Classifier training and measurement (bot/nlp_commands.py).
    nlp_commands.add_commands(commands)
    return parser


def configure_logging(settings: Settings, debug: bool) -> None:
    """Plain log lines on stderr.

    httpx is kept at WARNING because it logs bot-token URLs; twilio because it
    logs every request's URL and headers at INFO (the account SID, a resident's number).
    """
    level = logging.DEBUG if debug else getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", "twilio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``complaint-desk`` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            print(  # noqa: T201
                f"complaint-desk: environment variable {name}: {error['msg']}", file=sys.stderr
            )
        return EXIT_OPERATOR_ERROR
    configure_logging(settings, args.debug)
    try:
        return asyncio.run(admin_commands.run(args, settings, _load_config(args, settings)))
    except (ConfigFileError, StartupError) as exc:
        if args.debug:
            logger.exception("start-up failed")
        print(f"complaint-desk: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_OPERATOR_ERROR
    except KeyboardInterrupt:
        return 130


def _load_config(args: argparse.Namespace, settings: Settings) -> DeskConfig:
    path = Path(args.config) if args.config else settings.desk_config
    return load_desk_config(path)


if __name__ == "__main__":
    sys.exit(main())
