"""Every sentence the desk says, in one place, worded the same on every channel.

Resident texts are kept short: a service card must fit two UCS-2 SMS segments
(134 characters). Staff texts carry the masked contact, never a name.
"""

from __future__ import annotations

from datetime import datetime

from handlers.working_days import local_date_text

CHANNEL_LABELS = {"sms": "短信", "telegram": "Telegram", "web": "网页", "demo": "演示"}
RATING_LABELS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
}
STATUS_LABELS = {
    "received": "已登记",
    "accepted": "已受理，待分派",
    "rejected": "不予受理",
    "returned": "重新分派中",
    "assigned": "已转办",
    "claimed": "已签收",
    "in_progress": "办理中",
    "resolved": "已办结，待评价",
    "reopened": "重新办理",
    "closed": "已办结",
}

REOPENED_ASK = "我们已要求承办单位重新办理，请告诉我们哪里还没解决。"


def mask_address(channel: str, address: str) -> str:
    """A contact as departments see it: ``138****5678``, never a name or chat id."""
    if channel == "sms":
        digits = address.removeprefix("+86").lstrip("+")
        if len(digits) >= 7:
            return f"{digits[:3]}****{digits[-4:]}"
        return "****"
    return f"{CHANNEL_LABELS.get(channel, channel)}用户"


def query_hint(number: str) -> str:
    """How to ask about a ticket."""
    return f"查询进度请回复“查询 {number}”。"


def service_card(number: str, department: str | None, deadline: datetime | None) -> str:
    """The 服务联系卡 sent when a complaint is registered."""
    if department is None or deadline is None:
        return (
            f"您的投诉已登记，受理编号：{number}。"
            f"我们将在1个工作日内确定承办单位并告知您。{query_hint(number)}"
        )
    return (
        f"您的投诉已登记，受理编号：{number}，承办单位：{department}，"
        f"办理时限：{local_date_text(deadline)}前。{query_hint(number)}"
    )


def merged_card(number: str, department: str | None, deadline: datetime | None) -> str:
    """The answer to a complaint merged into an open ticket about the same problem."""
    handling = (
        f"承办单位：{department}，办理时限：{local_date_text(deadline)}前。"
        if department is not None and deadline is not None
        else ""
    )
    return (
        f"您反映的问题已有人投诉，已合并到受理编号：{number}一并办理。{handling}"
        f"{query_hint(number)}"
    )


def empty_complaint() -> str:
    """Reply to an empty message."""
    return "您好，请直接发送投诉内容（发生了什么、在什么地方），我们会登记并告知受理编号。"


def complaint_too_long(limit: int) -> str:
    """Reply to a message over the length limit."""
    return f"您的投诉内容过长，请精简到{limit}字以内后重新发送，谢谢。"


def resident_update(number: str, status: str, extra: str = "") -> str:
    """A status change as the resident reads it."""
    label = STATUS_LABELS.get(status, status)
    return f"受理编号 {number}：{label}。{extra}".rstrip()


def assigned_update(number: str, department: str, deadline: datetime) -> str:
    """The resident's notice that a department now handles the ticket."""
    return resident_update(
        number, "assigned", f"承办单位：{department}，办理时限：{local_date_text(deadline)}前。"
    )


def rating_prompt(number: str) -> str:
    """The 回访 question after 办结."""
    return f"请对受理编号 {number} 的办理结果评价：回复 1 满意，2 基本满意，3 不满意。"


def department_notice(
    *,
    number: str,
    category: str | None,
    confidence: float | None,
    evidence: list[str],
    urgent: bool,
    deadline: datetime | None,
    masked_contact: str,
    channel: str,
    text: str,
    heading: str = "转办单",
) -> str:
    """The ticket card a department sees in its group chat."""
    lines = [f"【{heading}】受理编号 {number}"]
    if category:
        why = f"，依据：{'、'.join(evidence)}" if evidence else ""
        score = f"（置信度 {confidence:.2f}{why}）" if confidence is not None else ""
        lines.append(f"类别：{category}{score}")
    lines.append(f"优先级：{'紧急' if urgent else '普通'}")
    if deadline is not None:
        lines.append(f"办理时限：{local_date_text(deadline)}")
    lines.append(f"来源：{CHANNEL_LABELS.get(channel, channel)} {masked_contact}")
    lines.append(f"内容：{text}")
    return "\n".join(lines)
