"""The ticket state machine of DESIGN.md, as one table.

``next_status(number, status, action)`` is the only place that decides whether
an action is legal; every use case asks it before changing anything, so a
refused action has changed nothing.
"""

from __future__ import annotations

from enum import StrEnum

from handlers.errors import IllegalTransition
from handlers.texts import STATUS_LABELS


class Status(StrEnum):
    """Where a ticket is in the workflow (投诉登记 ... 回访)."""

    RECEIVED = "received"  # 投诉登记
    ACCEPTED = "accepted"  # 受理, waiting in triage for a department
    REJECTED = "rejected"  # 不予受理
    RETURNED = "returned"  # 退单, back in triage
    ASSIGNED = "assigned"  # 转办
    CLAIMED = "claimed"  # 签收
    IN_PROGRESS = "in_progress"  # 办理中
    RESOLVED = "resolved"  # 办结, waiting for the resident's rating
    REOPENED = "reopened"  # unsatisfied or reopened by the centre
    CLOSED = "closed"  # 回访 done


class Action(StrEnum):
    """What an actor can do to a ticket."""

    ACCEPT = "accept"
    REJECT = "reject"
    ASSIGN = "assign"
    CLAIM = "claim"
    REPLY = "reply"
    RETURN = "return"
    TRANSFER = "transfer"
    RESOLVE = "resolve"
    RATE = "rate"
    REOPEN = "reopen"
    URGE = "urge"
    REQUEST_EXTENSION = "request_extension"  # 申请延期, by the handling department
    DECIDE_EXTENSION = "decide_extension"  # its approval or refusal, by the centre


class Rating(StrEnum):
    """The resident's 满意度 answer."""

    SATISFIED = "satisfied"  # 满意
    BASIC = "basically_satisfied"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


S = Status
# A department is "handling" a ticket in any of these statuses.
HANDLING = frozenset({S.ASSIGNED, S.CLAIMED, S.IN_PROGRESS, S.REOPENED})
TRIAGE = frozenset({S.RECEIVED, S.ACCEPTED, S.RETURNED})

# action -> (statuses it may start from, status it leads to). ``None`` as the
# target means "stays where it is" (urge) or "depends on the rating" (rate).
TRANSITIONS: dict[Action, tuple[frozenset[Status], Status | None]] = {
    Action.ACCEPT: (frozenset({S.RECEIVED}), S.ACCEPTED),
    Action.REJECT: (TRIAGE, S.REJECTED),
    Action.ASSIGN: (frozenset({S.ACCEPTED, S.RETURNED}), S.ASSIGNED),
    Action.CLAIM: (frozenset({S.ASSIGNED, S.REOPENED}), S.CLAIMED),
    Action.REPLY: (frozenset({S.CLAIMED, S.IN_PROGRESS}), S.IN_PROGRESS),
    Action.RETURN: (HANDLING, S.RETURNED),
    Action.TRANSFER: (HANDLING, S.ASSIGNED),
    Action.RESOLVE: (frozenset({S.CLAIMED, S.IN_PROGRESS}), S.RESOLVED),
    Action.RATE: (frozenset({S.RESOLVED}), None),
    Action.REOPEN: (frozenset({S.RESOLVED, S.CLOSED}), S.REOPENED),
    Action.URGE: (HANDLING, None),
    Action.REQUEST_EXTENSION: (HANDLING, None),
    Action.DECIDE_EXTENSION: (HANDLING, None),
}


def next_status(number: str, status: str, action: Action, rating: Rating | None = None) -> Status:
    """The status after ``action``, or ``IllegalTransition`` naming ticket, status and action."""
    allowed_from, target = TRANSITIONS[action]
    current = Status(status)
    if current not in allowed_from:
        raise IllegalTransition(number, current.value, action.value, STATUS_LABELS[current])
    if action is Action.RATE:
        return S.REOPENED if rating is Rating.UNSATISFIED else S.CLOSED
    return current if target is None else target
