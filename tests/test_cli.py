"""The ``complaint-desk`` command as an operator runs it, in a subprocess.

Bad environments must produce one precise line and exit 2, without a
traceback unless ``--debug``; ``serve`` must answer ``/healthz`` and stop
cleanly on SIGTERM; ``demo`` must tell the story and exit 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from bot.config_file import load_desk_config
from bot.outbox import DispatcherPolicy, OutboxDispatcher
from bot.settings import Settings
from bot.startup import open_database
from handlers.context import Desk
from handlers.directory_sync import sync_directory
from handlers.intake import handle_register
from handlers.messages import IncomingMessage

CLI = [sys.executable, "-m", "bot.cli"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run the command to completion."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        check=False,
    )


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "db", "demo", "ticket", "outbox"):
        assert command in result.stdout


def test_malformed_config_names_file_and_line_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "desk.toml"
    config.write_text('[desk]\nsupervision_department = "x"\nname = \n', encoding="utf-8")
    result = run_cli("--config", str(config), "db", "upgrade", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{config}:3:" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_shows_url_without_password_and_driver_reason(
    tmp_path: Path,
) -> None:
    url = f"postgresql+asyncpg://desk:s3cret-pw@127.0.0.1:{free_port()}/desk"
    result = run_cli("db", "upgrade", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 2
    assert "s3cret-pw" not in result.stderr
    assert "postgresql+asyncpg://desk:***@127.0.0.1" in result.stderr
    assert "refused" in result.stderr.lower() or "connect" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://desk:pw@127.0.0.1:{free_port()}/desk"
    result = run_cli("--debug", "db", "upgrade", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_answers_healthz_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"},
    )
    try:
        assert process.stdout is not None
        # The log line is written once the socket listens; read up to it.
        for line in process.stdout:
            if "serving on" in line:
                break
        else:
            pytest.fail("serve exited before listening")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as reply:
            assert reply.status == 200
            assert reply.read() == b'{"status": "ok"}'
        process.send_signal(signal.SIGTERM)
        rest = process.stdout.read()
        assert process.wait(timeout=30) == 0
        assert "shutting down" in rest
        assert "Traceback" not in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert (tmp_path / "serve.db").exists()


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    result = run_cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "受理编号",
        "【转办单】",
        "已签收",
        "答复：",
        "办理结果：",
        "请对受理编号",
        "感谢您的评价（满意）",
        "审计记录",
        "register",
        "claim",
        "resolve",
        "rate",
    ):
        assert expected in out, expected


def test_ticket_show_and_outbox_list_on_a_served_database(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"}
    assert run_cli("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    missing = run_cli("ticket", "show", "260000013", env=env, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no ticket numbered '260000013'" in missing.stderr
    listing = run_cli("outbox", env=env, cwd=tmp_path)
    assert listing.returncode == 0
    assert "no dead messages" in listing.stdout


async def _register_one(url: str) -> str:
    """Register a complaint in the database at ``url`` the way serve would."""
    database = await open_database(url)
    try:
        config = load_desk_config(None)
        await sync_directory(database, config)
        desk = Desk.build(database, config)
        result = await handle_register(
            desk, IncomingMessage("sms", "SM-cli-1", "+8613812345678", "小区电梯坏了三天，物业不管")
        )
    finally:
        await database.dispose()
    assert result.ticket_number is not None
    return result.ticket_number


async def test_ticket_show_prints_the_audit_trail_and_outbox_retry_requeues(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    env = {"DATABASE_URL": url}
    number = await _register_one(url)

    shown = run_cli("ticket", "show", number, env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"受理编号 {number}  已转办" in shown.stdout
    for action in ("register", "route", "accept", "assign"):
        assert f" {action} " in shown.stdout
    assert "pending sms:+8613812345678 (card)" in shown.stdout

    # No channel is configured here (and no group chat, so only the resident's
    # card is queued): a serve pass dead-letters it; then retry from the command line.
    database = await open_database(url)
    try:
        dispatcher = OutboxDispatcher(
            database, {}, DispatcherPolicy.from_settings(Settings(_env_file=None))
        )
        assert await dispatcher.run_once() == 1
    finally:
        await database.dispose()

    listing = run_cli("outbox", "list", env=env, cwd=tmp_path)
    assert listing.returncode == 0
    assert "no sender registered for channel 'sms'" in listing.stdout
    assert "1 dead letter(s); send again with: complaint-desk outbox retry" in listing.stdout

    retried = run_cli("outbox", "retry", "--all", env=env, cwd=tmp_path)
    assert (retried.returncode, retried.stdout.strip()) == (0, "queued again: 1")
    pending = run_cli("outbox", "list", "--status", "pending", env=env, cwd=tmp_path)
    assert pending.stdout.count("attempts=0") == 1
    again = run_cli("outbox", "retry", "999", env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert "not dead letters: [999]" in again.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"PORT": "99999"},
            "environment variable PORT: Input should be less than or equal to 65535",
        ),
        (
            {"OUTBOX_BASE_BACKOFF_SECONDS": "10", "OUTBOX_MAX_BACKOFF_SECONDS": "1"},
            "OUTBOX_BASE_BACKOFF_SECONDS must not exceed OUTBOX_MAX_BACKOFF_SECONDS",
        ),
        (
            {"DATABASE_URL": "postgresql+asyncpg://desk:pw-9@db:notaport/x"},
            "invalid DATABASE_URL <unparseable postgresql+asyncpg URL>",
        ),
    ],
    ids=["port", "backoff", "url"],
)
def test_bad_environment_is_one_line_without_traceback(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = run_cli("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "pw-9" not in result.stderr


def test_classify_shows_category_department_confidence_and_evidence(tmp_path: Path) -> None:
    result = run_cli(
        "classify", "社保局窗口工作人员态度恶劣，推诿扯皮，电话13812345678", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "category     作风效能" in lines
    assert "department   效能办" in lines
    assert "accused      人社局 (conduct complaint)" in lines
    assert "confidence   1.00" in lines
    assert any(line.startswith("evidence     ") and "态度恶劣" in line for line in lines)
    assert "phones       13812345678" in lines
