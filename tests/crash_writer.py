"""A writer process for the crash-recovery test: register complaints, ACK each after commit.

Run as ``python tests/crash_writer.py DATABASE_URL CONFIG_TOML START COUNT``. It
opens the database the way the server does (``bot.startup.open_database``),
syncs the directory, and registers SMS messages ``crash-<i>`` for ``i`` in
``START .. START+COUNT-1`` one after another. After each ``handle_register``
has returned (so after its commit) it prints ``ACK <i> <ticket number> <new|dup>``
and flushes: a line on stdout is a promise that the message is durable, which
is what a webhook's 2xx means to the provider. The test kills this process with
SIGKILL at an arbitrary point and then runs it again over the same range, as a
provider retrying unacknowledged (and acknowledged) messages would.

``CONFIG_TOML`` may be ``-`` for the packaged default config.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.config_file import load_desk_config
from bot.startup import open_database
from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.directory_sync import sync_directory
from handlers.intake import handle_register
from handlers.messages import IncomingMessage

CHANNEL = "sms"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

# Each routes somewhere different with the test desk (tests/conftest.py):
# 城乡建设, 环境保护 (with a co-department), 城管执法, a conduct complaint that
# goes to the supervision office, an urgent one, and one left for triage.
COMPLAINTS = (
    "小区物业长期不修电梯，老人上下楼非常困难，请尽快处理。",
    "化工厂夜间噪音扰民，还有刺鼻臭味，河水污染严重。",
    "菜市场门口摊贩占道经营，早晚高峰车辆无法通行。",
    "到住建局办事，窗口工作人员态度恶劣，几个科室互相推诿。",
    "老旧小区楼道里燃气泄漏，物业接到电话后一直没人来。",
    "公交站台的座椅坏了半年，希望有关部门安排修理。",
)


def external_id(i: int) -> str:
    """The provider id of message ``i`` (the dedupe key with the channel)."""
    return f"crash-{i}"


def complaint_text(i: int) -> str:
    """A complaint for message ``i``; the suffix keeps every text distinct."""
    return f"{COMPLAINTS[i % len(COMPLAINTS)]}（编号{i}）"


def sender(i: int) -> str:
    """A handful of residents, so contacts are both created and reused."""
    return f"+86138{i % 7:08d}"


def desk_config_toml(config: DeskConfig) -> str:
    """``config`` as a TOML file ``load_desk_config`` reads back to an equal config.

    The standard library reads TOML but cannot write it; this covers what a
    desk config holds (tables, arrays of tables, inline tables, scalars, lists).
    """
    data = config.model_dump(mode="json", exclude_none=True)
    # Plain top-level values first: after a [table] header they would belong to it.
    lines: list[str] = [
        f"{key} = {_toml_value(value)}"
        for key, value in data.items()
        if not isinstance(value, dict) and not _is_table_array(value)
    ]
    for key, value in data.items():
        if _is_table_array(value):
            for item in value:
                lines += ["", f"[[{key}]]", *_toml_pairs(item)]
        elif isinstance(value, dict):
            lines += ["", f"[{key}]", *_toml_pairs(value)]
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_pairs(table: Mapping[str, Any]) -> list[str]:
    return [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]


def _toml_key(key: str) -> str:
    # Keywords are Chinese, and TOML allows only ASCII in bare keys.
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string literal is a valid TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


async def write(url: str, config: DeskConfig, start: int, count: int) -> None:
    """Register messages ``start .. start+count-1`` and acknowledge each after its commit."""
    database = await open_database(url)
    try:
        await sync_directory(database, config)
        desk = Desk.build(database, config)
        for i in range(start, start + count):
            result = await handle_register(
                desk,
                IncomingMessage(
                    channel=CHANNEL,
                    external_id=external_id(i),
                    sender=sender(i),
                    text=complaint_text(i),
                    raw={"MessageSid": external_id(i)},
                ),
            )
            if result.ticket_number is None:
                raise RuntimeError(f"message {i} registered without a ticket: {result.reply!r}")
            # Only now, after the commit, may the message be acknowledged.
            sys.stdout.write(
                f"ACK {i} {result.ticket_number} {'dup' if result.duplicate else 'new'}\n"
            )
            sys.stdout.flush()
    finally:
        await database.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``DATABASE_URL CONFIG_TOML START COUNT`` and run the writer."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 4:
        sys.stderr.write(f"usage: {Path(__file__).name} DATABASE_URL CONFIG_TOML START COUNT\n")
        return 2
    url, config_path, start, count = args
    config = load_desk_config(None if config_path == "-" else Path(config_path))
    asyncio.run(write(url, config, int(start), int(count)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
