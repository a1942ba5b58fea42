"""The 台账 (ledger): every ticket registered in a period, for the centre, as rows or Excel.

One row per ticket, in registration order, read in keyset pages (one short
read transaction each) so a year of tickets never sits in memory at once.
The contact is masked the way departments see it (``138****5678``): the
phone number or Telegram chat a resident wrote from, and their name or
username, never reach a ledger file, which is passed around by e-mail and
USB stick. The complaint text is the resident's own, as on the departments'
cards. Conduct complaints (作风投诉) are included and marked: the ledger is
the centre's.

The workbook is written with openpyxl's write-only mode (rows stream to a
temporary file) in a worker thread, page by page, so the event loop keeps
serving while a large export runs. Text that a spreadsheet would read as a
formula (``=``, ``+``, ``-``, ``@`` first) gets a leading apostrophe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from handlers.context import Desk
from handlers.errors import DeskError
from handlers.texts import CHANNEL_LABELS, RATING_LABELS, STATUS_LABELS, mask_address
from handlers.workflow import HANDLING
from storage.models import DESK_TZ, Ticket, utcnow
from storage.unit_of_work import Database

PAGE_SIZE = 500
CONDUCT_MARK = "作风投诉"
# Only a department at work runs against a deadline (as in handlers.figures).
_RUNNING = frozenset(s.value for s in HANDLING)

# (header, column width in Excel's character units; a Chinese character counts two).
COLUMNS: tuple[tuple[str, int], ...] = (
    ("受理编号", 12),
    ("登记时间", 17),
    ("渠道", 9),
    ("类别", 12),
    ("投诉性质", 10),
    ("被投诉单位", 16),
    ("承办单位", 14),
    ("协办单位", 18),
    ("状态", 15),
    ("限办时间", 17),
    ("办结时间", 17),
    ("是否超期", 9),
    ("满意度", 9),
    ("联系方式", 15),
    ("诉求内容", 60),
)
HEADERS = tuple(header for header, _ in COLUMNS)
DATE_FORMAT = "yyyy-mm-dd hh:mm"
# Cells starting with these are formulas (or DDE) to Excel, LibreOffice and WPS.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXCEL_CELL_LIMIT = 32_767

Value = str | datetime | None


class UnknownDepartment(DeskError):
    """An export asked for a department code the desk does not have."""

    resident_message = "没有该单位，请核对单位代码。"

    def __init__(self, code: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown department {code!r} (known: {', '.join(known) or 'none'})")
        self.code = code


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One ticket in the ledger; fields in ``HEADERS`` order, datetimes aware in desk time."""

    number: str  # 受理编号
    registered_at: datetime  # 登记时间
    channel: str  # 渠道
    category: str  # 类别
    nature: str  # 投诉性质: 作风投诉 or empty
    accused: str  # 被投诉单位
    department: str  # 承办单位
    co_departments: str  # 协办单位
    status: str  # 状态
    deadline_at: datetime | None  # 限办时间
    resolved_at: datetime | None  # 办结时间
    overdue: str  # 是否超期: 是 / 否
    rating: str  # 满意度
    contact: str  # 联系方式, masked
    text: str  # 诉求内容

    def values(self) -> tuple[Value, ...]:
        """The row's cells in ``HEADERS`` order."""
        return tuple(getattr(self, name) for name in _FIELDS)


_FIELDS = tuple(f.name for f in fields(LedgerRow))


def is_overdue(ticket: Ticket, now: datetime) -> bool:
    """办结 after the deadline, or still being handled past it at ``now``."""
    if ticket.deadline_at is None:
        return False
    if ticket.resolved_at is not None:
        return ticket.resolved_at > ticket.deadline_at
    return ticket.status in _RUNNING and now > ticket.deadline_at


async def ledger_pages(
    source: Desk | Database,
    *,
    since: datetime,
    until: datetime,
    department_code: str | None = None,
    now: datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> AsyncIterator[list[LedgerRow]]:
    """The ledger of tickets created in ``[since, until)``, ``page_size`` rows at a time.

    ``department_code`` keeps the tickets that department leads (承办);
    ``now`` (default: the desk's clock) decides whether open tickets are overdue.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("ledger period needs aware datetimes")
    database = source.database if isinstance(source, Desk) else source
    if now is None:
        now = source.clock() if isinstance(source, Desk) else utcnow()
    async with database.reading() as uow:
        departments = await uow.directory.departments()
    names = {d.id: d.short_name for d in departments}
    department_id = None
    if department_code is not None:
        wanted = [d.id for d in departments if d.code == department_code]
        if not wanted:
            raise UnknownDepartment(department_code, [d.code for d in departments])
        department_id = wanted[0]
    after_id = 0
    while True:
        async with database.reading() as uow:
            found = await uow.ledger.page(
                since, until, after_id=after_id, limit=page_size, department_id=department_id
            )
            page = [
                _row(ticket, channel, address, names, now) for ticket, channel, address in found
            ]
        if page:
            yield page
        if len(found) < page_size:
            return
        after_id = found[-1][0].id


async def ledger_rows(
    source: Desk | Database,
    *,
    since: datetime,
    until: datetime,
    department_code: str | None = None,
    now: datetime | None = None,
) -> AsyncIterator[LedgerRow]:
    """The ledger of ``[since, until)`` one row at a time; see ``ledger_pages``."""
    async for page in ledger_pages(
        source, since=since, until=until, department_code=department_code, now=now
    ):
        for row in page:
            yield row


def _row(
    ticket: Ticket, channel: str, address: str, names: dict[int, str], now: datetime
) -> LedgerRow:
    def named(ids: Iterable[int]) -> str:
        return "、".join(names.get(i, "") for i in ids)

    return LedgerRow(
        number=ticket.number or "",
        registered_at=ticket.created_at.astimezone(DESK_TZ),
        channel=CHANNEL_LABELS.get(ticket.channel, ticket.channel),
        category=ticket.category or "",
        nature=CONDUCT_MARK if ticket.accused_department_ids else "",
        accused=named(ticket.accused_department_ids),
        department=named([ticket.department_id]) if ticket.department_id is not None else "",
        co_departments=named(ticket.co_department_ids),
        status=STATUS_LABELS.get(ticket.status, ticket.status),
        deadline_at=_local(ticket.deadline_at),
        resolved_at=_local(ticket.resolved_at),
        overdue="是" if is_overdue(ticket, now) else "否",
        rating=RATING_LABELS.get(ticket.rating, ticket.rating) if ticket.rating else "",
        # The contact row's own channel: a ticket's channel and its contact's always agree today.
        contact=mask_address(channel, address),
        text=ticket.text,
    )


def _local(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(DESK_TZ)


def excel_text(text: str) -> str:
    """``text`` as a cell that can never be a formula, a control character or too long."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)[:EXCEL_CELL_LIMIT]
    if text.startswith(FORMULA_START):
        # The apostrophe stays in the value: it also protects a CSV saved from the workbook.
        return "'" + text[: EXCEL_CELL_LIMIT - 1]
    return text


class LedgerWorkbook:
    """A write-only workbook with the ledger's header; rows are appended, then saved once.

    Blocking (openpyxl writes XML to a temporary file): call it from a worker
    thread in async code, one call at a time.
    """

    def __init__(self, title: str = "台账") -> None:
        self._workbook = Workbook(write_only=True)
        self._sheet: WriteOnlyWorksheet = self._workbook.create_sheet(title)
        self.rows = 0
        # Widths and the frozen header must be set before the first row is written.
        columns = self._sheet.column_dimensions
        for index, (_, width) in enumerate(COLUMNS, start=1):
            columns[get_column_letter(index)].width = width
        self._sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for title_text in HEADERS:
            cell = WriteOnlyCell(self._sheet, value=title_text)
            cell.font = bold
            header.append(cell)
        self._sheet.append(header)

    def append(self, rows: Iterable[LedgerRow]) -> int:
        """Write ``rows``; how many were written."""
        written = 0
        for row in rows:
            self._sheet.append([self._cell(value) for value in row.values()])
            written += 1
        self.rows += written
        return written

    def save(self, path: Path) -> None:
        """Write the file (a write-only workbook can be saved only once)."""
        self._workbook.save(path)

    def discard(self) -> None:
        """Give up an unsaved workbook: nothing is written to any path.

        Closing the sheet ends openpyxl's row writer cleanly; left to the
        garbage collector it writes to its already closed temporary file.
        openpyxl removes the temporary file when the process exits.
        """
        if not self._sheet.closed:
            self._sheet.close()

    def _cell(self, value: Value) -> object:
        if value is None or value == "":
            return None  # an empty cell, not an empty string
        if isinstance(value, datetime):
            # Excel has no time zones: a naive datetime in desk time, shown as such.
            cell = WriteOnlyCell(self._sheet, value=value.astimezone(DESK_TZ).replace(tzinfo=None))
            cell.number_format = DATE_FORMAT
            return cell
        text = excel_text(value)
        if "\n" in text:
            cell = WriteOnlyCell(self._sheet, value=text)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            return cell
        return text


def write_ledger_xlsx(rows: Iterable[LedgerRow], path: Path) -> int:
    """Write ``rows`` under the header to a new .xlsx at ``path``; how many rows. Blocking."""
    workbook = LedgerWorkbook()
    try:
        workbook.append(rows)
        workbook.save(path)
    finally:
        workbook.discard()
    return workbook.rows


async def export_ledger(
    source: Desk | Database,
    path: Path,
    *,
    since: datetime,
    until: datetime,
    department_code: str | None = None,
    now: datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> int:
    """Write the ledger of ``[since, until)`` to ``path`` off the event loop; how many rows.

    Each page is read on the loop and written in a worker thread, so neither
    the database reads nor openpyxl hold the loop, and one page at most is in memory.
    """
    workbook = await asyncio.to_thread(LedgerWorkbook)
    pages = ledger_pages(
        source,
        since=since,
        until=until,
        department_code=department_code,
        now=now,
        page_size=page_size,
    )
    try:
        async for page in pages:
            await asyncio.to_thread(workbook.append, page)
        await asyncio.to_thread(workbook.save, path)
    finally:
        # After a failure (an unknown department, the database, the disk): a
        # few bytes of XML to close, so no need to leave the loop for it.
        workbook.discard()
    return workbook.rows
