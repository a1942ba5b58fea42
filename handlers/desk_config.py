"""The desk's policy: departments, categories, deadlines, staff and keywords.

These are the typed shapes of the TOML config file (``bot/config_file.py``
reads and locates errors in it). Handlers take a ``DeskConfig``; nothing here
reads files.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["clerk", "supervisor", "admin"]
# Keywords match by substring: an empty one would match every text.
Word = Annotated[str, Field(min_length=1, max_length=40)]
Weight = Annotated[float, Field(gt=0, le=100)]


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in the config must not be silently ignored.
    # Strict: TOML values are typed, so "501" for a user id is a mistake, not a number.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DeskSection(_Strict):
    """Who the desk is and the numbers that shape its workflow."""

    name: str = "市机关效能投诉中心"
    phone: str = ""
    admin_chat_id: int | None = None
    supervision_department: str = Field(
        description="code of the department that receives conduct complaints"
    )
    triage_confidence: float = Field(default=0.34, ge=0, le=1)
    default_deadline_days: int = Field(default=10, ge=1, le=90)
    urgent_deadline_days: int = Field(default=1, ge=1, le=90)
    max_text_chars: int = Field(default=2000, ge=100, le=20000)
    # Replies and results reach residents by SMS too: 1,600 characters is Twilio's cap.
    max_reply_chars: int = Field(default=1000, ge=50, le=1500)
    # People split one complaint over several texts: a message within this many
    # minutes of the same sender's new ticket is added to it (0: never).
    follow_up_minutes: int = Field(default=10, ge=0, le=240)
    # At most this many new tickets per sender within the window (0: no limit),
    # so one phone cannot flood the departments' queues.
    new_ticket_limit: int = Field(default=5, ge=0, le=1000)
    new_ticket_window_minutes: int = Field(default=10, ge=1, le=1440)


class DepartmentConfig(_Strict):
    """One department: its code, names and the group chat where its staff work."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    name: str = Field(min_length=2, max_length=100)
    short_name: str = Field(min_length=1, max_length=30)
    aliases: list[str] = Field(default_factory=list)
    chat_id: int | None = None
    thread_id: int | None = None


class CategoryConfig(_Strict):
    """A complaint category, the department that handles it and its deadline."""

    code: str = Field(min_length=2, max_length=60)
    parent: str | None = None
    department: str
    co_departments: list[str] = Field(default_factory=list)
    deadline_days: int | None = Field(default=None, ge=1, le=90)
    keywords: dict[Word, Weight] = Field(default_factory=dict)
    negative_keywords: list[Word] = Field(default_factory=list)


class StaffConfig(_Strict):
    """A staff member, by numeric Telegram user id, in one department."""

    telegram_user_id: int = Field(gt=0)
    department: str
    role: Role = "clerk"
    name: str = ""


class KeywordList(_Strict):
    """Words that flag a complaint (urgent danger)."""

    keywords: list[Word] = Field(default_factory=list)


DEFAULT_OFFICIALS = (
    "工作人员", "办事人员", "办事员", "窗口", "公务员", "干部", "领导", "局长", "副局长",
    "科长", "所长", "主任", "站长", "队长", "执法人员", "执法队员", "城管队员", "民警",
    "警察", "辅警", "协管员", "接线员", "街道办", "居委会", "村委会", "村干部", "政府",
    "相关部门", "有关部门", "职能部门", "书记", "镇长", "乡长", "村长", "网格员",
)  # fmt: skip
DEFAULT_PRIVATE_PARTIES = (
    "物业", "物业公司", "开发商", "商家", "老板", "公司", "中介", "房东", "商户", "店家",
    "业主", "邻居", "租户", "施工方", "施工单位", "包工头", "司机", "快递", "外卖", "银行",
    "医生", "护士", "老师", "学校", "医院", "保安", "酒店", "餐馆", "饭店", "超市",
)  # fmt: skip


class ConductConfig(_Strict):
    """作风效能: misconduct words, and who they must be aimed at to count.

    A misconduct word counts only when its nearest subject is a department or
    an official; aimed at a private party (a 物业, a shop) it is an ordinary
    complaint.
    """

    keywords: list[Word] = Field(default_factory=list)
    officials: list[Word] = Field(default_factory=lambda: list(DEFAULT_OFFICIALS))
    private_parties: list[Word] = Field(default_factory=lambda: list(DEFAULT_PRIVATE_PARTIES))


class DistrictConfig(_Strict):
    """A district or town whose own offices handle some categories there."""

    name: str = Field(min_length=2, max_length=30)
    aliases: list[Word] = Field(default_factory=list)
    # category code -> department code, for complaints about this district
    routes: dict[str, str] = Field(default_factory=dict)


class DuplicatesConfig(_Strict):
    """When a new complaint is merged into an open ticket instead of opening another."""

    enabled: bool = True
    window_days: int = Field(default=30, ge=1, le=365)
    # Character-bigram similarity (nlp.similarity): duplicates score 0.75 and
    # up, different complaints of the same kind 0.45 and below.
    same_sender_threshold: float = Field(default=0.8, gt=0, le=1)
    same_place_threshold: float = Field(default=0.65, gt=0, le=1)
    max_candidates: int = Field(default=500, ge=1, le=10_000)


class CalendarConfig(_Strict):
    """Corrections to the Chinese working-day calendar (for years it does not know yet)."""

    extra_holidays: list[date] = Field(default_factory=list)
    extra_workdays: list[date] = Field(default_factory=list)


class DeskConfig(_Strict):
    """The whole TOML file, cross-checked."""

    desk: DeskSection
    departments: list[DepartmentConfig] = Field(min_length=1)
    categories: list[CategoryConfig] = Field(min_length=1)
    staff: list[StaffConfig] = Field(default_factory=list)
    conduct: ConductConfig = Field(default_factory=ConductConfig)
    districts: list[DistrictConfig] = Field(default_factory=list)
    duplicates: DuplicatesConfig = Field(default_factory=DuplicatesConfig)
    urgent: KeywordList = Field(default_factory=KeywordList)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)

    @model_validator(mode="after")
    def _references_resolve(self) -> DeskConfig:
        codes = [d.code for d in self.departments]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated:
            raise ValueError(f"department code defined twice: {', '.join(duplicated)}")
        known = set(codes)
        if self.desk.supervision_department not in known:
            raise ValueError(
                f"desk.supervision_department {self.desk.supervision_department!r} "
                "is not a department code"
            )
        category_codes = [c.code for c in self.categories]
        twice = sorted({c for c in category_codes if category_codes.count(c) > 1})
        if twice:
            raise ValueError(f"category code defined twice: {', '.join(twice)}")
        for category in self.categories:
            for code in [category.department, *category.co_departments]:
                if code not in known:
                    raise ValueError(
                        f"category {category.code!r} names unknown department {code!r}"
                    )
            if category.parent is not None and category.parent not in category_codes:
                raise ValueError(
                    f"category {category.code!r} names unknown parent {category.parent!r}"
                )
        for district in self.districts:
            for category_code, code in district.routes.items():
                if category_code not in category_codes:
                    raise ValueError(
                        f"district {district.name!r} routes unknown category {category_code!r}"
                    )
                if code not in known:
                    raise ValueError(
                        f"district {district.name!r} names unknown department {code!r}"
                    )
        for member in self.staff:
            if member.department not in known:
                raise ValueError(
                    f"staff {member.telegram_user_id} names unknown department "
                    f"{member.department!r}"
                )
        return self

    @cached_property
    def department_by_code(self) -> dict[str, DepartmentConfig]:
        """Departments keyed by code."""
        return {d.code: d for d in self.departments}

    @cached_property
    def category_by_code(self) -> dict[str, CategoryConfig]:
        """Categories keyed by code."""
        return {c.code: c for c in self.categories}

    def deadline_days(self, category: str | None, *, urgent: bool) -> int:
        """Working days allowed for a ticket of this category."""
        if urgent:
            return self.desk.urgent_deadline_days
        found = self.category_by_code.get(category or "")
        if found is not None and found.deadline_days is not None:
            return found.deadline_days
        return self.desk.default_deadline_days
