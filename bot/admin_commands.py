"""The CLI's commands once settings and config are loaded: each opens what it needs."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

from bot.serve import serve
from bot.settings import Settings
from bot.startup import StartupError, open_database
from handlers.api_keys import UnknownApiKey, create_api_key, list_api_keys, revoke_api_key
from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.errors import InvalidInput, TicketNotFound
from handlers.messages import SYSTEM
from handlers.queries import ticket_view
from handlers.texts import STATUS_LABELS
from storage.db import safe_url
from storage.migrate import current_revision
from storage.models import DESK_TZ, utcnow
from storage.repositories.outbox import DEAD
from storage.unit_of_work import Database


def say(line: str = "") -> None:
    """Write one line of command output to stdout."""
    sys.stdout.write(line + "\n")


async def run(args: argparse.Namespace, settings: Settings, config: DeskConfig) -> int:
    """Run the parsed command; the exit code."""
    if args.command == "serve":
        await serve(settings, config, args.host or settings.host, args.port or settings.port)
        return 0
    if args.command == "db":
        return await db_upgrade(settings)
    if args.command == "demo":
        from bot.demo import run_demo

        return await run_demo(config)
    if args.command == "classify":
        from bot.classify_command import classify_command

        return classify_command(args.text, settings, config)
    if args.command == "ticket":
        return await show_ticket(settings, config, args.number)
    if args.command == "export":
        return await export_command(settings, args)
    if args.command == "apikey":
        return await apikey_command(settings, args)
    if args.command in ("train", "eval"):
        from bot import nlp_commands

        history = await read_history(settings) if getattr(args, "from_history", False) else []
        return nlp_commands.run(args, config, history)
    return await outbox_command(settings, args)


async def read_history(settings: Settings) -> list[tuple[str, str]]:
    """(text, label) of the desk's labelled examples: the newest label of each ticket."""
    database = await open_database(settings.database_url)
    try:
        async with database.reading() as uow:
            return [(e.text, e.label) for e in await uow.examples.latest_per_ticket()]
    finally:
        await database.dispose()


async def db_upgrade(settings: Settings) -> int:
    """Apply migrations and say where the schema is."""
    database = await open_database(settings.database_url, migrate=True)
    try:
        revision = await current_revision(database.engine)
    finally:
        await database.dispose()
    say(f"database {safe_url(settings.database_url)} is at schema {revision}")
    return 0


async def show_ticket(settings: Settings, config: DeskConfig, number: str) -> int:
    """Print a ticket, its audit trail and its messages."""
    database = await open_database(settings.database_url)
    try:
        desk = Desk.build(database, config)
        try:
            view = await ticket_view(desk, number.strip(), SYSTEM)
        except TicketNotFound as exc:
            raise StartupError(f"no ticket numbered {number!r}") from exc
        async with database.reading() as uow:
            messages = await uow.outbox.for_ticket(view.ticket.id)
    finally:
        await database.dispose()
    ticket = view.ticket
    say(f"受理编号 {ticket.number}  {STATUS_LABELS.get(ticket.status, ticket.status)}")
    say(f"  category     {ticket.category or '-'} (confidence {ticket.confidence or 0:.2f})")
    say(f"  department   {view.department or '-'}")
    if view.accused_departments:
        accused = "、".join(view.accused_departments)
        say(f"  accused      {accused} (conduct complaint, confidential)")
    say(f"  priority     {ticket.priority}")
    say(f"  deadline     {_local(ticket.deadline_at)}")
    say(f"  text         {ticket.text}")
    if ticket.result_text:
        say(f"  result       {ticket.result_text}")
    say("audit trail:")
    for event in view.events:
        move = f"{event.from_status or ''}->{event.to_status or ''}" if event.to_status else ""
        say(f"  {_local(event.at)}  {event.actor:<12} {event.action:<10} {move} {event.detail}")
    say("messages:")
    for message in messages:
        say(
            f"  #{message.id} {message.status:<7} {message.channel}:{message.recipient} "
            f"({message.purpose}) attempts={message.attempts}"
        )
    return 0


async def export_command(settings: Settings, args: argparse.Namespace) -> int:
    """Write the 台账 of the chosen days to an .xlsx file and say how many rows."""
    from handlers.ledger import UnknownDepartment, export_ledger

    today = utcnow().astimezone(DESK_TZ).date()
    first, last = ledger_period(args.date_from, args.date_to, today)
    path = Path(args.out)
    database = await open_database(settings.database_url)
    try:
        rows = await export_ledger(
            database,
            path,
            since=_desk_midnight(first),
            until=_desk_midnight(last + timedelta(days=1)),
            department_code=args.department,
        )
    except UnknownDepartment as exc:
        raise StartupError(str(exc)) from exc
    except OSError as exc:
        raise StartupError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        await database.dispose()
    which = f"department {args.department}" if args.department else "all departments"
    say(f"wrote {rows} row(s) to {path} (registered {first} to {last}, {which})")
    return 0


def ledger_period(date_from: str | None, date_to: str | None, today: date) -> tuple[date, date]:
    """The first and last day (both included) of an export; by default ``today``'s month.

    Without ``--from`` the period starts on the 1st of the ``--to`` month, so
    ``--to`` alone exports that month.
    """
    last = _parse_day("--to", date_to) if date_to else _last_of_month(today)
    first = _parse_day("--from", date_from) if date_from else last.replace(day=1)
    if first > last:
        raise StartupError(f"--from {first} is after --to {last}")
    return first, last


def _parse_day(option: str, text: str) -> date:
    # fromisoformat alone would also take 20261101 and 2026-W48-1.
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        try:
            return date.fromisoformat(text.strip())
        except ValueError as exc:
            raise StartupError(f"{option} {text!r} is not a date: {exc}") from exc
    raise StartupError(f"{option} {text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-01")


def _last_of_month(day: date) -> date:
    next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return next_month - timedelta(days=1)


def _desk_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=DESK_TZ)


async def apikey_command(settings: Settings, args: argparse.Namespace) -> int:
    """Issue, revoke or list Open311 clients' API keys; a new key is printed once, never logged."""
    database = await open_database(settings.database_url)
    try:
        if args.apikey_command == "create":
            await _create_key(database, args.name)
        elif args.apikey_command == "revoke":
            await _revoke_key(database, args.name)
        else:
            await _list_keys(database)
    except InvalidInput as exc:
        raise StartupError(str(exc)) from exc
    except UnknownApiKey as exc:
        raise StartupError(f"{exc}; see `complaint-desk apikey list`") from exc
    finally:
        await database.dispose()
    return 0


async def _create_key(database: Database, name: str) -> None:
    issued = await create_api_key(database, name)
    # stdout only: the key must never reach a log line.
    say(f"API key for {issued.name!r} (prefix {issued.prefix}):")
    say(issued.key)
    say("Store it now: it cannot be shown again (only its hash is kept).")


async def _revoke_key(database: Database, name: str) -> None:
    if await revoke_api_key(database, name):
        say(f"revoked API key {name.strip()!r}")
    else:
        say(f"API key {name.strip()!r} was already revoked")


async def _list_keys(database: Database) -> None:
    keys = await list_api_keys(database)
    if not keys:
        say("no API keys; issue one with: complaint-desk apikey create NAME")
        return
    width = max(len("name"), *(len(key.name) for key in keys))
    say(f"{'name':<{width}}  prefix    created           revoked")
    for key in keys:
        say(
            f"{key.name:<{width}}  {key.prefix:<8}  {_local(key.created_at)}  "
            f"{_local(key.revoked_at)}"
        )


async def outbox_command(settings: Settings, args: argparse.Namespace) -> int:
    """List outbox rows (dead letters by default) or put dead letters back in the queue."""
    database = await open_database(settings.database_url)
    try:
        if getattr(args, "outbox_command", None) == "retry":
            return await _retry(database, args.ids, args.all)
        status = getattr(args, "status", DEAD)
        async with database.reading() as uow:
            rows = await uow.outbox.with_status(status, limit=getattr(args, "limit", 50))
    finally:
        await database.dispose()
    if not rows:
        say(f"no {status} messages")
        return 0
    for row in rows:
        say(
            f"#{row.id} {row.channel}:{row.recipient} ticket={row.ticket_id} "
            f"attempts={row.attempts} created={_local(row.created_at)}"
        )
        if row.last_error:
            say(f"    last error: {row.last_error}")
    if status == DEAD:
        say(
            f"{len(rows)} dead letter(s); send again with: complaint-desk outbox retry ID... "
            "(or --all)"
        )
    return 0


async def _retry(database: Database, ids: list[int], everything: bool) -> int:
    if not ids and not everything:
        raise StartupError("name the outbox ids to retry, or pass --all")
    async with database.transaction() as uow:
        if everything:
            say(f"queued again: {await uow.outbox.revive_all()}")
            return 0
        revived = [i for i in ids if await uow.outbox.revive(i)]
    missing = sorted(set(ids) - set(revived))
    say(f"queued again: {len(revived)}" + (f"; not dead letters: {missing}" if missing else ""))
    return 0 if not missing else 1


def _local(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(DESK_TZ).strftime("%Y-%m-%d %H:%M")
