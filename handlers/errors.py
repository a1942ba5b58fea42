"""One exception tree for the use cases.

Every ``DeskError`` carries ``resident_message``: polite Chinese that is safe to
show to whoever asked. ``str(exc)`` is the precise operator message and is only
logged. Anything that is not a ``DeskError`` is a bug: the resident gets a
generic apology and the traceback goes to the log.
"""

from __future__ import annotations

GENERIC_APOLOGY = "抱歉，系统暂时无法处理您的请求，请稍后再试。"


class DeskError(Exception):
    """Base of every expected failure of a use case."""

    resident_message = GENERIC_APOLOGY


class TicketNotFound(DeskError):
    """No ticket with that number (or none the asker may see)."""

    resident_message = "未找到该受理编号，请核对后重新输入。"

    def __init__(self, number: str) -> None:
        super().__init__(f"ticket {number!r} not found")
        self.number = number


class IllegalTransition(DeskError):
    """The action is not allowed in the ticket's current status."""

    def __init__(self, number: str, status: str, action: str, status_label: str = "") -> None:
        super().__init__(f"ticket {number}: cannot {action} while {status}")
        self.number = number
        self.status = status
        self.action = action
        now = f"（当前：{status_label}）" if status_label else ""
        self.resident_message = f"受理编号 {number} 当前状态不能执行该操作{now}。"


class NotAuthorised(DeskError):
    """The actor may not perform this action on this ticket."""

    resident_message = "您没有权限执行该操作。"


class InvalidInput(DeskError):
    """Input that cannot be accepted; the resident message says what to do instead."""

    def __init__(self, operator_message: str, resident_message: str) -> None:
        super().__init__(operator_message)
        self.resident_message = resident_message
