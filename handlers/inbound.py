"""Every stored inbound message, answered once: a resident's command or a complaint.

Channels store a message first (``storage.group_commit`` or
``handlers.intake.handle_register``) and then hand its row id here.
``parse_resident_message`` decides what it is: 查询, 评价, 退订/订阅, 帮助
are answered by ``handlers.resident``; anything else is a complaint and is
registered by ``handlers.intake``. The reply is remembered with the message,
so a provider's retry is answered the same way and never answered twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from handlers.context import Desk
from handlers.intake import register_stored, store_message
from handlers.messages import IncomingMessage, IntakeResult
from handlers.resident import handle_resident_command, open_ticket_buttons
from handlers.resident_commands import (
    Complaint,
    ListOpen,
    ResidentCommand,
    parse_resident_message,
)
from storage.models import utcnow

logger = logging.getLogger(__name__)

ProcessStored = Callable[[Desk, int, IncomingMessage], Awaitable[IntakeResult]]


async def handle_incoming(desk: Desk, message: IncomingMessage) -> IntakeResult:
    """Store a message and answer it, in the request (channels without group commit)."""
    stored = await store_message(desk, message)
    if isinstance(stored, IntakeResult):
        return stored
    return await handle_stored(desk, stored, message)


async def handle_stored(desk: Desk, inbound_id: int, message: IncomingMessage) -> IntakeResult:
    """Answer the stored message ``inbound_id``: run the command or register the complaint."""
    command = parse_resident_message(message.provider_keyword or message.text)
    if isinstance(command, Complaint):
        return await register_stored(desk, inbound_id, message)
    return await _answer_command(desk, inbound_id, message, command)


async def process_pending(
    desk: Desk,
    *,
    older_than: timedelta | None = None,
    process: ProcessStored | None = None,
) -> int:
    """Answer every stored message whose processing was interrupted; how many.

    ``process`` handles one stored message (default ``handle_stored``; the
    app passes one that knows its channels' raw updates too).
    ``older_than`` leaves alone messages received more recently (still on
    their way to a worker): for the periodic sweep while the desk runs.
    """
    before = utcnow() - older_than if older_than is not None else None
    async with desk.database.reading() as uow:
        pending = [
            (row.id, IncomingMessage(row.channel, row.external_id, row.sender, row.text))
            for row in await uow.inbound.unprocessed(received_before=before)
        ]
    for inbound_id, message in pending:
        # The request that brought it is long gone (reply_inline is False):
        # the answer goes by the outbox.
        await (process or handle_stored)(desk, inbound_id, message)
    if pending:
        logger.warning("answered %d message(s) whose processing was interrupted", len(pending))
    return len(pending)


async def _answer_command(
    desk: Desk, inbound_id: int, message: IncomingMessage, command: ResidentCommand
) -> IntakeResult:
    async with desk.database.reading() as uow:
        stored = await uow.inbound.get(inbound_id)
        if stored is None:
            raise LookupError(f"inbound message {inbound_id} is not stored")
        if stored.reply_text is not None:
            return IntakeResult(reply=stored.reply_text, ticket_number=None, duplicate=True)
    # The command runs in its own transactions (a rating moves the ticket and
    # queues its own notices). If the process dies before the reply below is
    # stored, the command runs again at start-up: every command is idempotent
    # except a rating, whose second run is refused politely.
    reply = await handle_resident_command(desk, message.channel, message.sender, command) or ""
    # On Telegram the list of open tickets has a button per ticket: a tap shows its timeline.
    buttons = (
        await open_ticket_buttons(desk, message.channel, message.sender)
        if isinstance(command, ListOpen)
        else None
    )
    if message.provider_keyword is not None:
        # Twilio answered STOP/START/HELP itself; a second answer would be noise
        # (and after STOP, refused with error 21610).
        reply = ""
    async with desk.database.transaction() as uow:
        inbound = await uow.inbound.get_for_update(inbound_id)
        if inbound.reply_text is not None:
            return IntakeResult(reply=inbound.reply_text, ticket_number=None, duplicate=True)
        inbound.reply_text = reply
        inbound.reply_inline = message.reply_inline
        if reply and not message.reply_inline:
            await uow.outbox.enqueue(
                channel=message.channel,
                recipient=message.sender,
                body=reply,
                purpose="reply",
                buttons=buttons,
            )
    desk.on_outbox()
    return IntakeResult(reply=reply, ticket_number=None, duplicate=False)
