"""Shared fixtures: a migrated database on SQLite and, when configured, PostgreSQL.

``database`` is parametrised: every test that uses it runs on a fresh SQLite
file and, when ``COMPLAINT_DESK_TEST_PG_URL`` is set (CI sets it), again on
PostgreSQL in a schema of its own that is dropped afterwards. Without the URL
the PostgreSQL runs are skipped with the reason shown.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.directory_sync import sync_directory
from storage.db import create_engine
from storage.migrate import upgrade
from storage.unit_of_work import Database

PG_URL_ENV = "COMPLAINT_DESK_TEST_PG_URL"
PG_URL = os.environ.get(PG_URL_ENV)


def pytest_report_header() -> str:
    """Say at the top of the run whether the PostgreSQL tests run."""
    if PG_URL:
        return f"PostgreSQL tests: on ({PG_URL_ENV} is set)"
    return f"PostgreSQL tests: skipped ({PG_URL_ENV} is not set)"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Which database a storage test runs on."""
    backend: str = request.param
    if backend == "postgresql" and not PG_URL:
        if os.environ.get("COMPLAINT_DESK_REQUIRE_PG"):
            pytest.fail(f"COMPLAINT_DESK_REQUIRE_PG is set but {PG_URL_ENV} is not")
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}=postgresql+asyncpg://...")
    return backend


@pytest.fixture
async def database_url(db_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to an empty database on the chosen backend."""
    if db_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
        return
    assert PG_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}search_path={schema}"
    async with admin.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database."""
    engine = create_engine(database_url)
    await upgrade(engine)
    db = Database(engine)
    yield db
    await db.dispose()


def make_desk_config() -> DeskConfig:
    """A small desk for tests: three departments, three categories, one supervisor office."""
    return DeskConfig.model_validate(
        {
            "desk": {
                "name": "测试市机关效能投诉中心",
                "phone": "12345",
                "admin_chat_id": -1000,
                "supervision_department": "xiaoneng",
                "triage_confidence": 0.3,
                "default_deadline_days": 10,
                "urgent_deadline_days": 1,
                # Off here, as merging is: most tests send many texts from one
                # phone and expect a ticket each. Their own tests switch them on.
                "follow_up_minutes": 0,
                "new_ticket_limit": 0,
            },
            "departments": [
                {
                    "code": "zhujian",
                    "name": "市住房和城乡建设局",
                    "short_name": "住建局",
                    "aliases": ["住建"],
                    "chat_id": -1001,
                },
                {
                    "code": "huanbao",
                    "name": "市生态环境局",
                    "short_name": "生态环境局",
                    "aliases": ["环保局"],
                    "chat_id": -1002,
                },
                {
                    "code": "chengguan",
                    "name": "市城市管理综合执法局",
                    "short_name": "城管局",
                    "aliases": ["城管", "综合执法局"],
                    "chat_id": -1003,
                },
                {"code": "xiaoneng", "name": "市效能办", "short_name": "效能办", "chat_id": -1004},
            ],
            "categories": [
                {
                    "code": "城乡建设",
                    "department": "zhujian",
                    "deadline_days": 10,
                    "keywords": {"物业": 2, "小区": 1, "电梯": 2},
                },
                {
                    "code": "环境保护",
                    "department": "huanbao",
                    "co_departments": ["chengguan"],
                    "deadline_days": 5,
                    "keywords": {"噪音": 2, "污染": 2, "臭味": 2},
                },
                {
                    "code": "城管执法",
                    "parent": "城乡建设",
                    "department": "chengguan",
                    "keywords": {"占道": 2, "摊贩": 2},
                },
            ],
            "staff": [
                {
                    "telegram_user_id": 501,
                    "department": "zhujian",
                    "role": "clerk",
                    "name": "王科员",
                },
                {"telegram_user_id": 502, "department": "huanbao", "role": "clerk"},
                {"telegram_user_id": 503, "department": "chengguan", "role": "clerk"},
                {
                    "telegram_user_id": 900,
                    "department": "xiaoneng",
                    "role": "admin",
                    "name": "李主任",
                },
            ],
            "conduct": {"keywords": ["态度恶劣", "推诿", "不作为", "乱收费"]},
            "urgent": {"keywords": ["燃气泄漏", "着火", "坍塌"]},
            # Most tests send the same text many times and mean separate tickets;
            # merging is tested on its own (test_duplicates.py switches it on).
            "duplicates": {"enabled": False},
        }
    )


@pytest.fixture
def desk_config() -> DeskConfig:
    """The small test desk."""
    return make_desk_config()


class FakeClock:
    """A clock the test moves by hand; starts on a Monday morning in Shanghai."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 Asia/Shanghai

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    """The test's clock."""
    return FakeClock()


@pytest.fixture
async def desk(database: Database, desk_config: DeskConfig, clock: FakeClock) -> Desk:
    """A desk over the migrated test database, with departments and staff synced."""
    await sync_directory(database, desk_config)
    return Desk.build(database, desk_config, clock=clock)
