"""``complaint-desk demo``: one complaint's whole story, told as a conversation.

Runs in-process on a throwaway SQLite database with recording channels: the
same handlers, outbox and dispatcher as ``serve``, only the providers are
replaced by senders that print what they would have delivered.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from bot.channels.recording import RecordingSender
from bot.outbox import DispatcherPolicy, OutboxDispatcher
from bot.startup import open_database
from handlers import ticket_actions
from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.directory_sync import sync_directory
from handlers.intake import handle_register
from handlers.messages import Actor, IncomingMessage
from handlers.queries import ticket_view
from handlers.texts import mask_address
from handlers.workflow import Rating
from storage.unit_of_work import Database

RESIDENT = "+8613812345678"
COMPLAINT = "我家小区楼下的烧烤店每天晚上油烟很大，噪音扰民到凌晨两点，多次反映没人管，请处理。"
CLERK_ID = 10001
ADMIN_CHAT = -100900


def say(line: str = "") -> None:
    """Write one line of the story."""
    sys.stdout.write(line + "\n")


def demo_config(config: DeskConfig) -> DeskConfig:
    """The configured desk with a group chat per department and a clerk in each."""
    data = config.model_dump()
    data["desk"]["admin_chat_id"] = ADMIN_CHAT
    for index, department in enumerate(data["departments"], start=1):
        department["chat_id"] = -100100 - index
    data["staff"] = [
        {"telegram_user_id": CLERK_ID, "department": d["code"], "role": "clerk", "name": "王科员"}
        for d in data["departments"]
    ]
    return DeskConfig.model_validate(data)


class Story:
    """Prints each delivered message as a line of the conversation."""

    def __init__(self, config: DeskConfig, senders: list[RecordingSender]) -> None:
        self._chats = {str(d.chat_id): f"{d.short_name}工作群" for d in config.departments}
        self._chats[str(ADMIN_CHAT)] = "中心管理群"
        self._senders = senders
        self._shown = 0

    def show_new(self) -> None:
        """Print what the dispatcher delivered since the last call, in delivery order."""
        delivered = sorted((m for s in self._senders for m in s.sent), key=lambda m: m.outbox_id)
        for message in delivered[self._shown :]:
            if message.channel == "sms":
                say(f"── 投诉中心 → 居民 {mask_address('sms', message.recipient)}（短信）")
            else:
                say(f"── 投诉中心 → {self._chats.get(message.recipient, message.recipient)}")
            for line in message.body.splitlines():
                say(f"   {line}")
            for row in message.buttons or []:
                say("   " + " ".join(f"[{button['text']}]" for button in row))
        self._shown = len(delivered)


async def run_demo(config: DeskConfig) -> int:
    """Tell the story; 0 when every step went as the workflow says."""
    config = demo_config(config)
    with tempfile.TemporaryDirectory(prefix="complaint-desk-demo-") as folder:
        database = await open_database(f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}")
        try:
            return await _tell(database, config)
        finally:
            await database.dispose()


async def _tell(database: Database, config: DeskConfig) -> int:
    await sync_directory(database, config)
    desk = Desk.build(database, config)
    sms, telegram = RecordingSender("sms"), RecordingSender("telegram")
    dispatcher = OutboxDispatcher(
        database,
        {"sms": sms, "telegram": telegram},
        DispatcherPolicy(
            batch_size=50,
            max_attempts=3,
            lease=timedelta(seconds=30),
            base_backoff_seconds=1,
            max_backoff_seconds=10,
            poll_seconds=1,
        ),
    )
    story = Story(config, [sms, telegram])

    async def deliver() -> None:
        while await dispatcher.run_once():
            pass
        story.show_new()
        say()

    say(f"── 居民 {mask_address('sms', RESIDENT)}（短信）→ 投诉中心")
    say(f"   {COMPLAINT}")
    result = await handle_register(desk, IncomingMessage("sms", "SMdemo0001", RESIDENT, COMPLAINT))
    number = result.ticket_number
    if number is None:
        say("demo failed: the complaint was not registered")
        return 1
    await deliver()

    view = await ticket_view(desk, number, Actor(kind="system", label="demo"))
    async with database.reading() as uow:
        assert view.ticket.department_id is not None
        clerk = await uow.directory.staff_member(CLERK_ID, view.ticket.department_id)
    assert clerk is not None
    staff = Actor(
        kind="staff",
        label=f"{clerk.name}",
        staff_id=clerk.id,
        department_id=clerk.department_id,
        role=clerk.role,
    )
    resident = Actor(kind="citizen", label="居民", citizen_id=view.ticket.citizen_id)
    department = view.department

    say(f"── {clerk.name}（{department}）点击 [签收]")
    await ticket_actions.handle_claim(desk, number, staff)
    await deliver()
    reply = "已联系属地街道和执法中队，今晚到现场核查。"
    say(f"── {clerk.name}（{department}）回复工单：{reply}")
    await ticket_actions.handle_reply(desk, number, staff, reply)
    await deliver()
    outcome = "经现场核查，该烧烤店已加装油烟净化器，并承诺晚上十点后停止室外经营。"
    say(f"── {clerk.name}（{department}）点击 [办结]：{outcome}")
    await ticket_actions.handle_resolve(desk, number, staff, outcome)
    await deliver()
    say(f"── 居民 {mask_address('sms', RESIDENT)}（短信）→ 投诉中心")
    say("   1")
    await ticket_actions.handle_rate(desk, number, resident, Rating.SATISFIED)
    await deliver()

    final = await ticket_view(desk, number, Actor(kind="system", label="demo"))
    say(f"── 审计记录（受理编号 {number}）")
    for event in final.events:
        move = f" {event.from_status or '-'} → {event.to_status}" if event.to_status else ""
        if event.action == "route":
            move = f" {event.detail.get('category')} → {event.detail.get('department')}"
        say(f"   {event.at:%H:%M:%S} {event.actor:<10} {event.action:<8}{move}")
    if final.ticket.status != "closed":
        say(f"demo failed: ticket ended {final.ticket.status}, expected closed")
        return 1
    return 0
