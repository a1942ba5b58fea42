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


# --------------------------------------------------------------- resident commands
# What a resident can send besides a complaint (查询, 评价, 退订, 帮助) and the
# answers. Every answer fits two UCS-2 SMS segments: free text written by staff
# (a result, a reply) is shortened to make room, never the number or the status.

SMS_REPLY_LIMIT = 134
_RATING_CHOICES = "1满意，2基本满意，3不满意"
# handlers.workflow imports this module, so its status groups are spelled out here.
_TRIAGE = ("received", "accepted", "returned")
_HANDLING = ("assigned", "claimed", "in_progress", "reopened")


def _fit(head: str, label: str, free: str, tail: str = "") -> str:
    """``head`` + ``label：free。`` + ``tail`` within the SMS limit, shortening ``free``."""
    if not free:
        return head + tail
    room = SMS_REPLY_LIMIT - len(head) - len(tail) - len(label) - 2  # "：" and "。"
    if len(free) > room:
        free = free[: max(room - 1, 0)] + "…"
    return f"{head}{label}：{free}。{tail}"


def _short_date(moment: datetime) -> str:
    """A date without the year, for lists where every character counts: 12月14日."""
    return local_date_text(moment).split("年", 1)[1]


def ticket_status(
    number: str,
    status: str,
    *,
    department: str | None,
    deadline: datetime | None,
    note_label: str = "",
    note: str = "",
) -> str:
    """The answer to 查询 <编号>: status, department and deadline, and the latest public note."""
    head = f"受理编号 {number}：{STATUS_LABELS.get(status, status)}。"
    tail = ""
    if status in _TRIAGE:
        tail = "我们将尽快确定承办单位。"
    elif department is not None and status in (*_HANDLING, "resolved", "closed"):
        due = (
            f"，办理时限：{local_date_text(deadline)}前"
            if deadline is not None and status in _HANDLING
            else ""
        )
        head += f"承办单位：{department}{due}。"
    if status == "resolved":
        tail = f"评价请回复“评价 {number} 数字”（{_RATING_CHOICES}）。"
    return _fit(head, note_label, note, tail)


def ticket_number_unclear() -> str:
    """Reply to 查询 with something that is not a valid ticket number."""
    return "受理编号有误，请核对后回复“查询 编号”。回复“查询”可查看您的全部投诉。"


def open_tickets(items: list[tuple[str, str, datetime | None]], total: int) -> str:
    """The answer to 查询 alone: the newest open tickets (number, status, deadline)."""
    lines = [f"您有{total}件投诉正在办理："]
    for number, status, deadline in items:
        # Only a department at work has a deadline worth telling.
        due = f"，{_short_date(deadline)}前办结" if deadline and status in _HANDLING else ""
        lines.append(f"{number} {STATUS_LABELS.get(status, status)}{due}")
    more = f"另有{total - len(items)}件。" if total > len(items) else ""
    lines.append(f"{more}详情请回复“查询 编号”。")
    return "\n".join(lines)


def no_open_tickets() -> str:
    """The answer to 查询 alone when nothing of theirs is open."""
    return "您目前没有正在办理的投诉。如需投诉，请直接发送问题描述（发生了什么、在什么地方）。"


def nothing_to_rate() -> str:
    """A rating when none of their tickets waits for one."""
    return "您目前没有待评价的投诉。如需查询进度，请回复“查询”。"


def rating_not_pending(number: str, status: str) -> str:
    """A rating of a ticket that is not waiting for one (still handled, or already rated)."""
    return f"受理编号 {number} 目前无需评价（当前：{STATUS_LABELS.get(status, status)}）。"


def rating_usage() -> str:
    """Reply to 评价 without a usable rating or number."""
    return f"评价请回复“评价 编号 数字”（{_RATING_CHOICES}），请核对编号。"


def opted_out() -> str:
    """Confirmation of 退订: prompts and notices stop, their own tickets' progress does not."""
    return "您已退订评价邀请和通知公告。您本人投诉的办理进度仍会告知您。回复“订阅”可恢复。"


def opted_in() -> str:
    """Confirmation of 订阅."""
    return "您已恢复接收评价邀请和通知公告。回复“退订”可取消。"


def help_text(phone: str = "") -> str:
    """The answer to 帮助/HELP: how to complain, query, rate and opt out."""
    call = f"人工服务请拨{phone}。" if phone else ""
    return (
        "直接发送问题描述即可投诉。查询进度：查询 编号；查看全部：查询；"
        f"评价：评价 编号 数字（{_RATING_CHOICES}）；退订通知：退订；恢复：订阅。{call}"
    )


def rate_limited(minutes: int) -> str:
    """Refusal of a new complaint: too many from this sender within ``minutes``."""
    return (
        f"您{minutes}分钟内提交的投诉较多，请稍后再发送新的投诉。"
        "如是补充已反映的问题，无需重复投诉，回复“查询”可查看进度。"
    )


def details_appended(number: str) -> str:
    """A follow-up message added to the sender's recent ticket."""
    return f"您补充的内容已加入受理编号 {number}，将一并办理。{query_hint(number)}"


def details_open(number: str, minutes: int) -> str:
    """补充材料 pressed: what to send, and for how long it joins the ticket."""
    return (
        f"请在{minutes}分钟内直接发送要补充的文字、照片、文件或位置，"
        f"将加入受理编号 {number}，一并转给承办单位。"
    )


def details_closed(number: str) -> str:
    """补充材料 pressed on a ticket that is no longer being handled."""
    return f"受理编号 {number} 已办结或不予受理，不能再补充材料。如有新问题，请直接发送新的投诉。"


def attachments_need_text(minutes: int) -> str:
    """Reply to a photo, file or location with no text and no recent ticket to attach it to."""
    return (
        "已收到您发送的附件。请先用文字描述问题（发生了什么、在什么地方），"
        f"登记后{minutes}分钟内发送的照片、文件和位置会附在投诉上。"
    )


def media_only() -> str:
    """Reply to a picture, voice or other message without text."""
    return (
        "抱歉，我们只能读取文字消息，无法查看图片或语音。"
        "请用文字描述问题（发生了什么、在什么地方）。"
    )


def telegram_welcome(desk_name: str) -> str:
    """/start in a private chat: what the desk does, privacy, the commands."""
    return (
        f"您好，这里是{desk_name}。请直接发送您要投诉或反映的问题（发生了什么、在什么地方），"
        "可以附照片或位置。我们会登记并告知受理编号、承办单位和办理时限，办理进展会在这里通知您。\n"
        "隐私：您的联系方式只有投诉中心可见，承办单位看不到。\n"
        "命令：/my 我的投诉  /status 编号 查询进度  /stop 退订通知  /help 帮助"
    )
