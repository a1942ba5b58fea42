"""The desk config file: the shipped default is complete, and every mistake is located.

Malformed files are made by editing single lines of a small valid file, so each
case names the exact line an operator must be sent to.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.config_file import ConfigFileError, load_desk_config, locate, parse_desk_config
from handlers.desk_config import DeskConfig

# The 15 first-level categories of the 12345 hotline standard.
FIRST_LEVEL = {
    "城乡建设",
    "交通运输",
    "党务政务",
    "农村农业",
    "劳动和社会保障",
    "卫生计生",
    "商贸旅游",
    "国土资源",
    "政法",
    "教育文体",
    "民政",
    "环境保护",
    "科技与信息产业",
    "纪检监察",
    "经济管理",
}

DEPARTMENT_NAMES = {
    "市住房和城乡建设局",
    "市生态环境局",
    "市交通运输局",
    "市教育局",
    "市人力资源和社会保障局",
    "市商务局",
    "市卫生健康委员会",
    "市公安局",
    "市市场监督管理局",
    "市民政局",
    "市自然资源和规划局",
    "市农业农村局",
    "市城市管理综合执法局",
    "市机关效能建设办公室",
}

# Line numbers matter: the cases below name them.
VALID = """\
[desk]
supervision_department = "xiaoneng"
triage_confidence = 0.3

[[departments]]
code = "zhujian"
name = "市住房和城乡建设局"
short_name = "住建局"
aliases = ["住建", "房管局"]

[[departments]]
code = "xiaoneng"
name = "市机关效能建设办公室"
short_name = "效能办"

[[categories]]
code = "城乡建设"
department = "zhujian"
deadline_days = 10

[categories.keywords]
"物业" = 2
"噪音" = 1

[[categories]]
code = "纪检监察"
department = "xiaoneng"
keywords = { "受贿" = 3, "贪污" = 3 }

[[staff]]
telegram_user_id = 501
department = "zhujian"
"""


def edited(edits: dict[int, str]) -> str:
    """VALID with some lines (1-based) replaced; line numbers stay the same."""
    lines = VALID.splitlines()
    for number, text in edits.items():
        lines[number - 1] = text
    return "\n".join(lines) + "\n"


@pytest.fixture
def default() -> DeskConfig:
    return load_desk_config(None)


# --- the shipped default -------------------------------------------------------------


def test_default_covers_the_15_first_level_categories(default: DeskConfig) -> None:
    top = {c.code for c in default.categories if c.parent is None}
    assert top == FIRST_LEVEL


def test_default_has_the_city_departments(default: DeskConfig) -> None:
    assert {d.name for d in default.departments} == DEPARTMENT_NAMES
    assert all(d.chat_id is None for d in default.departments)
    assert all(d.aliases for d in default.departments)


def test_default_routes_every_category_to_a_known_department(default: DeskConfig) -> None:
    known = set(default.department_by_code)
    for category in default.categories:
        assert category.department in known, category.code
        assert set(category.co_departments) <= known - {category.department}, category.code


def test_default_sends_misconduct_only_to_the_supervision_office(default: DeskConfig) -> None:
    supervision = default.desk.supervision_department
    assert default.department_by_code[supervision].short_name == "效能办"
    discipline = default.category_by_code["纪检监察"]
    assert discipline.department == supervision
    assert discipline.co_departments == []


def test_default_second_level_categories_go_to_another_department(default: DeskConfig) -> None:
    children = [c for c in default.categories if c.parent is not None]
    assert {"城管执法", "违章建筑"} <= {c.code for c in children}
    assert default.category_by_code["城管执法"].department == "chengguan"
    for child in children:
        assert child.parent in FIRST_LEVEL, child.code
        assert child.department != default.category_by_code[child.parent].department, child.code


def test_default_keyword_dictionaries(default: DeskConfig) -> None:
    for category in default.categories:
        if category.parent is None:
            # Enough words to recognise real complaints, few enough to curate by hand.
            assert 30 <= len(category.keywords) <= 150, category.code
        assert category.keywords, category.code
        assert set(category.keywords.values()) <= {1, 2, 3}, category.code
        assert all(w and w == w.strip() for w in category.keywords), category.code
        # A word that both selects and rules out the category would be a contradiction.
        assert not set(category.negative_keywords) & set(category.keywords), category.code
    assert "占道经营" in default.category_by_code["城管执法"].keywords
    assert "噪音" in default.category_by_code["环境保护"].keywords


def test_default_deadlines_are_working_days_in_the_usual_range(default: DeskConfig) -> None:
    for category in default.categories:
        assert category.deadline_days is not None, category.code
        assert 3 <= category.deadline_days <= 15, category.code
    assert default.deadline_days("环境保护", urgent=False) < default.deadline_days(
        "国土资源", urgent=False
    )


def test_default_conduct_and_urgent_words(default: DeskConfig) -> None:
    assert {"门难进", "推诿", "吃拿卡要", "不作为"} <= set(default.conduct.keywords)
    assert {"燃气泄漏", "着火", "坍塌", "触电"} <= set(default.urgent.keywords)
    assert not set(default.conduct.keywords) & set(default.urgent.keywords)


def test_default_calendar_adds_only_years_the_library_does_not_know(
    default: DeskConfig,
) -> None:
    holidays = set(default.calendar.extra_holidays)
    # chinese_calendar knows up to 2026; correcting a known year would fight it.
    assert min(holidays).year >= 2027
    assert {date(2027, 1, 1), date(2027, 5, 1), date(2027, 10, 1), date(2027, 10, 7)} <= holidays
    assert not holidays & set(default.calendar.extra_workdays)
    assert default.staff == []


# --- malformed files -----------------------------------------------------------------


def test_the_valid_sample_loads(tmp_path: Path) -> None:
    path = tmp_path / "desk.toml"
    path.write_text(VALID, encoding="utf-8")
    config = load_desk_config(path)
    assert config.category_by_code["纪检监察"].keywords == {"受贿": 3, "贪污": 3}


BAD_FILES = {
    "toml syntax": ({8: "short_name = 住建局"}, 8, "TOML syntax error: Invalid value (column 14)"),
    "duplicate toml key": (
        {23: '"物业" = 1'},
        23,
        "TOML syntax error: Cannot overwrite a value",
    ),
    "misspelt key": (
        {3: "triage_confidance = 0.3"},
        3,
        "desk.triage_confidance: unknown key",
    ),
    "misspelt section": ({30: "[[stafff]]"}, 30, "stafff: unknown key"),
    "wrong type": (
        {31: 'telegram_user_id = "王科员"'},
        31,
        "staff[0].telegram_user_id: Input should be a valid integer (got '王科员')",
    ),
    "weight not a number in sub-table": (
        {23: '"噪音" = "高"'},
        23,
        "categories[0].keywords.噪音: Input should be a valid number",
    ),
    "weight not a number in inline table": (
        {28: 'keywords = { "受贿" = 3, "贪污" = "很高" }'},
        28,
        "categories[1].keywords.贪污: Input should be a valid number",
    ),
    "key written below the keywords table": (
        {24: 'negative_keywords = ["宠物医院"]'},
        24,
        "categories[0].keywords.negative_keywords: Input should be a valid number",
    ),
    "out of range": (
        {19: "deadline_days = 0"},
        19,
        "categories[0].deadline_days: Input should be greater than or equal to 1 (got 0)",
    ),
    "fraction out of range": (
        {3: "triage_confidence = 3.4"},
        3,
        "desk.triage_confidence: Input should be less than or equal to 1 (got 3.4)",
    ),
    "bad department code": (
        {6: 'code = "ZhuJian"'},
        6,
        "departments[0].code: String should match pattern",
    ),
    "missing required key": (
        {18: "# department removed"},
        16,
        "categories[0].department: required key is missing",
    ),
    "category names unknown department": (
        {18: 'department = "zhujiann"'},
        18,
        "category '城乡建设' names unknown department 'zhujiann'",
    ),
    "category names unknown parent": (
        {29: 'parent = "城乡建"'},
        29,
        "category '纪检监察' names unknown parent '城乡建'",
    ),
    # "住建" is also an alias on line 9: the staff line must still be the one shown.
    "staff names unknown department": (
        {32: 'department = "住建"'},
        32,
        "staff 501 names unknown department '住建'",
    ),
    "duplicate department code": (
        {12: 'code = "zhujian"', 2: 'supervision_department = "zhujian"'},
        12,
        "department code defined twice: zhujian",
    ),
    "unknown supervision department": (
        {2: 'supervision_department = "jiwei"'},
        2,
        "desk.supervision_department 'jiwei' is not a department code",
    ),
    "missing desk section": (
        {1: "# [desk]", 2: "#", 3: "#"},
        1,
        "[desk] section is missing",
    ),
    "no departments": (
        {n: "#" for n in range(5, 15)},
        1,
        "[[departments]] tables are missing",
    ),
    "two problems: the first in the file is shown": (
        {19: "deadline_days = 0", 3: "triage_confidence = 3.4"},
        3,
        "desk.triage_confidence: Input should be less than or equal to 1 (got 3.4) "
        "(and 1 more problem)",
    ),
}


@pytest.mark.parametrize(
    ("edits", "line", "problem"), list(BAD_FILES.values()), ids=list(BAD_FILES)
)
def test_malformed_file_names_the_line(
    tmp_path: Path, edits: dict[int, str], line: int, problem: str
) -> None:
    path = tmp_path / "desk.toml"
    path.write_text(edited(edits), encoding="utf-8")
    with pytest.raises(ConfigFileError) as caught:
        load_desk_config(path)
    assert str(caught.value).startswith(f"{path}:{line}: {problem}")
    assert caught.value.line == line


def test_first_problem_in_the_file_is_shown_not_the_first_field(tmp_path: Path) -> None:
    # [desk] moved to the end: the model checks it first, the operator reads it last.
    moved = edited({1: "#", 2: "#", 3: "#", 6: 'code = "ZhuJian"'})
    path = tmp_path / "desk.toml"
    path.write_text(moved + '[desk]\nsupervision_department = "xiaoneng"\nx = 1\n', "utf-8")
    with pytest.raises(ConfigFileError) as caught:
        load_desk_config(path)
    assert str(caught.value).startswith(f"{path}:6: departments[0].code: String should match")
    assert str(caught.value).endswith("(and 1 more problem)")


def test_bad_reference_is_shown_in_the_category_the_message_names(tmp_path: Path) -> None:
    # The same wrong code earlier in the file, for a staff member: not that line.
    staff_first = '[[staff]]\ntelegram_user_id = 7\ndepartment = "zhujiann"\n\n'
    path = tmp_path / "desk.toml"
    path.write_text(staff_first + edited({18: 'department = "zhujiann"'}), "utf-8")
    with pytest.raises(ConfigFileError) as caught:
        load_desk_config(path)
    assert str(caught.value) == (
        f"{path}:22: category '城乡建设' names unknown department 'zhujiann'"
    )


def test_file_saved_as_gbk_is_refused_at_the_first_chinese_line(tmp_path: Path) -> None:
    path = tmp_path / "desk.toml"
    path.write_bytes(VALID.encode("gbk"))
    with pytest.raises(ConfigFileError) as caught:
        load_desk_config(path)
    assert str(caught.value).startswith(f"{path}:7: not UTF-8 text (byte 0xca)")


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "desk.toml"
    path.write_bytes(VALID.encode("utf-8-sig"))
    assert load_desk_config(path).desk.supervision_department == "xiaoneng"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigFileError) as caught:
        load_desk_config(path)
    assert str(caught.value) == f"{path}: file not found"
    assert caught.value.line is None


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_desk_config(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: cannot read the file: ")


def test_unclosed_string_is_reported_on_its_line() -> None:
    with pytest.raises(ConfigFileError) as caught:
        parse_desk_config('[desk]\nname = "中心\n\n'.encode(), "desk.toml")
    message = "desk.toml:2: TOML syntax error: Illegal character '\\n' (column 11)"
    assert str(caught.value) == message
    with pytest.raises(ConfigFileError) as caught:
        parse_desk_config('[desk]\nname = "中心'.encode(), "desk.toml")
    assert str(caught.value) == "desk.toml:2: TOML syntax error: Unterminated string"


# --- locating keys -------------------------------------------------------------------

LOCATE_TEXT = """\
title = "x"
[desk]
name = "中心"
intro = \"\"\"
code = "not a key"
\"\"\"
[[categories]]
code = "a"
[[categories]]
code = "b"
keywords."噪音" = 2
[categories.extra]
'单引号' = 1
[[categories]]
code = "c"
"""


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("title",), 1),
        (("desk", "name"), 3),
        (("desk", "missing"), 2),
        (("desk", "code"), 2),
        (("categories", 0, "code"), 8),
        (("categories", 1), 9),
        (("categories", 1, "code"), 10),
        (("categories", 1, "keywords", "噪音"), 11),
        (("categories", 1, "extra", "单引号"), 13),
        (("categories", 2, "code"), 15),
        (("categories", 9, "code"), 7),
        (("nowhere", "at all"), 1),
    ],
)
def test_locate(loc: tuple[str | int, ...], line: int) -> None:
    assert locate(LOCATE_TEXT, loc) == line
