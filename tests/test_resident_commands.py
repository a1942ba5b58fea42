"""Parsing what a resident sends: 查询, 评价, 退订/订阅, 帮助, or a complaint."""

from __future__ import annotations

import pytest

from handlers.resident_commands import (
    TWILIO_KEYWORDS,
    Complaint,
    Help,
    ListOpen,
    OptIn,
    OptOut,
    Query,
    Rate,
    ResidentCommand,
    Unclear,
    parse_resident_message,
)
from handlers.workflow import Rating
from nlp.ticket_numbers import format_ticket_number, is_valid_ticket_number

NUMBER = format_ticket_number(13, 2026)  # 260000137
LONG_NUMBER = format_ticket_number(1_234_567, 2026)  # ten digits: 2612345677
# Nine digits whose check digit is wrong: a typo, not anybody's ticket.
TYPO = NUMBER[:-1] + str((int(NUMBER[-1]) + 1) % 10)
FULL_WIDTH = NUMBER.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})

SAT, BASIC, UNSAT = Rating.SATISFIED, Rating.BASIC, Rating.UNSATISFIED


def test_the_test_numbers_are_what_they_claim() -> None:
    assert (len(NUMBER), len(LONG_NUMBER)) == (9, 10)
    assert is_valid_ticket_number(NUMBER)
    assert is_valid_ticket_number(LONG_NUMBER)
    assert not is_valid_ticket_number(TYPO)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"查询 {NUMBER}", Query(NUMBER)),
        (f"查询{NUMBER}", Query(NUMBER)),
        (f"查询：{NUMBER}", Query(NUMBER)),
        (f"查询受理编号 {NUMBER}", Query(NUMBER)),
        (f"查询进度 {NUMBER}", Query(NUMBER)),
        (f"查 {NUMBER}", Query(NUMBER)),
        (f"CX {NUMBER}", Query(NUMBER)),
        (f"cx{NUMBER}", Query(NUMBER)),
        (f"Cx {NUMBER}", Query(NUMBER)),
        (f"ＣＸ{FULL_WIDTH}", Query(NUMBER)),
        (f"查询　{FULL_WIDTH}", Query(NUMBER)),  # ideographic space
        (f"  查询   {NUMBER}  ", Query(NUMBER)),
        (f"查询 {NUMBER[:4]} {NUMBER[4:]}", Query(NUMBER)),
        (f"查询 {NUMBER}。", Query(NUMBER)),
        (f"查询 {NUMBER}！", Query(NUMBER)),
        (f"查询 {NUMBER}!", Query(NUMBER)),
        (f"查询 {NUMBER}.", Query(NUMBER)),
        (f"查询 {NUMBER}？", Query(NUMBER)),
        (f"“查询 {NUMBER}”", Query(NUMBER)),  # copied from the service card
        (f"您好，查询{NUMBER}，谢谢！", Query(NUMBER)),
        (f"请问查询 {NUMBER}", Query(NUMBER)),
        (f"查詢 {NUMBER}", Query(NUMBER)),  # traditional script
        (f"查询 {LONG_NUMBER}", Query(LONG_NUMBER)),
        (NUMBER, Query(NUMBER)),
        (FULL_WIDTH, Query(NUMBER)),
        (f"{NUMBER}。", Query(NUMBER)),
        (f"受理编号：{NUMBER}", Query(NUMBER)),
        (LONG_NUMBER, Query(LONG_NUMBER)),
    ],
)
def test_a_query_names_one_ticket(text: str, expected: ResidentCommand) -> None:
    assert parse_resident_message(text) == expected


@pytest.mark.parametrize("text", ["查询", "CX", "cx", "Cx。", "查询！", "查", "查询进度", " 查询 "])
def test_a_query_without_number_lists_open_tickets(text: str) -> None:
    assert parse_resident_message(text) == ListOpen()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"评价 {NUMBER} 1", Rate(NUMBER, SAT)),
        (f"评价 {NUMBER} 2", Rate(NUMBER, BASIC)),
        (f"评价 {NUMBER} 3", Rate(NUMBER, UNSAT)),
        (f"评价{NUMBER} 3", Rate(NUMBER, UNSAT)),
        (f"评价 {NUMBER}，3", Rate(NUMBER, UNSAT)),
        (f"评价：{NUMBER}：2", Rate(NUMBER, BASIC)),
        (f"评价{NUMBER}1", Rate(NUMBER, SAT)),  # no space: the last digit is the rating
        (f"评价 {LONG_NUMBER}3", Rate(LONG_NUMBER, UNSAT)),
        (f"评价 {NUMBER} 满意", Rate(NUMBER, SAT)),
        (f"评价{NUMBER}基本满意", Rate(NUMBER, BASIC)),
        (f"评价 {NUMBER} 不满意。", Rate(NUMBER, UNSAT)),
        (f"評價 {NUMBER} 不滿意", Rate(NUMBER, UNSAT)),
        (f"ＰＪ {FULL_WIDTH} ３", Rate(NUMBER, UNSAT)),
        (f"pj {NUMBER} 1", Rate(NUMBER, SAT)),
        (f"评价 {LONG_NUMBER} 2", Rate(LONG_NUMBER, BASIC)),
        ("评价 1", Rate(None, SAT)),
        ("评价 不满意", Rate(None, UNSAT)),
        ("1", Rate(None, SAT)),
        ("2", Rate(None, BASIC)),
        ("3", Rate(None, UNSAT)),
        ("３", Rate(None, UNSAT)),
        (" 1。", Rate(None, SAT)),
        ("满意", Rate(None, SAT)),
        ("基本满意", Rate(None, BASIC)),
        ("不满意", Rate(None, UNSAT)),
        ("不满意！", Rate(None, UNSAT)),
        ("滿意", Rate(None, SAT)),
    ],
)
def test_a_rating(text: str, expected: ResidentCommand) -> None:
    assert parse_resident_message(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A mistyped number is answered with how to write it, not registered.
        (f"查询 {TYPO}", Unclear("query")),
        (f"CX {NUMBER[:-1]}", Unclear("query")),
        (TYPO, Unclear("query")),
        ("13812345678", Unclear("query")),  # a phone number alone is no complaint
        ("评价", Unclear("rate")),
        (f"评价 {NUMBER}", Unclear("rate")),  # no rating
        (f"评价 {NUMBER} 5", Unclear("rate")),
        (f"评价 {TYPO} 1", Unclear("rate")),
        (f"评价 {TYPO} 满意", Unclear("rate")),
        ("0", Unclear("rate")),
        ("4", Unclear("rate")),
    ],
)
def test_a_command_with_an_unusable_argument_is_unclear(
    text: str, expected: ResidentCommand
) -> None:
    assert parse_resident_message(text) == expected


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("退订", "退订"),
        ("退订。", "退订"),
        ("退 订", "退订"),
        ("退訂", "退订"),
        ("取消订阅", "取消订阅"),
        ("TD", "td"),
        ("T", "t"),
        ("STOP", "stop"),
        ("Stop", "stop"),
        ("stop!", "stop"),
        ("ＳＴＯＰ", "stop"),
        ("STOPALL", "stopall"),
        ("stop all", "stopall"),
        ("UNSUBSCRIBE", "unsubscribe"),
        ("CANCEL", "cancel"),
        ("END", "end"),
        ("QUIT", "quit"),
        ("REVOKE", "revoke"),
        ("OPTOUT", "optout"),
    ],
)
def test_opt_out(text: str, keyword: str) -> None:
    assert parse_resident_message(text) == OptOut(keyword)


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("订阅", "订阅"),
        ("恢复订阅", "恢复订阅"),
        ("訂閱", "订阅"),
        ("START", "start"),
        ("start.", "start"),
        ("YES", "yes"),
        ("Unstop", "unstop"),
    ],
)
def test_opt_in(text: str, keyword: str) -> None:
    assert parse_resident_message(text) == OptIn(keyword)


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("帮助", "帮助"),
        ("幫助", "帮助"),
        ("HELP", "help"),
        ("help?", "help"),
        ("INFO", "info"),
        ("?", "?"),
        ("？", "?"),
        ("？？", "?"),
    ],
)
def test_help(text: str, keyword: str) -> None:
    assert parse_resident_message(text) == Help(keyword)


@pytest.mark.parametrize(
    ("command", "carrier"),
    [
        (OptOut("stop"), True),
        (OptOut("退订"), False),
        (OptOut("td"), False),
        (OptIn("start"), True),
        (OptIn("yes"), True),
        (OptIn("订阅"), False),
        (Help("help"), True),
        (Help("帮助"), False),
    ],
)
def test_carrier_keywords_are_twilios_defaults(
    command: OptOut | OptIn | Help, carrier: bool
) -> None:
    assert command.carrier_keyword is carrier


def test_twilio_keywords_are_exactly_its_documented_defaults() -> None:
    assert (
        frozenset(
            {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
            | {"start", "yes", "unstop"}
            | {"help", "info"}
        )
        == TWILIO_KEYWORDS
    )


@pytest.mark.parametrize(
    "text",
    [
        "查询了好几次都没人管，小区路灯坏了",
        f"我上次投诉的{NUMBER}到现在都没人处理",
        f"{NUMBER}这个投诉还没解决，楼道灯又坏了",
        "查处违章建筑太慢了",
        "查一下我的投诉",
        "评价很差，工作人员推诿",
        "评价：工作人员态度不满意",
        "我对处理结果不满意，问题还在",
        "满意个屁，路灯还是坏的",
        "stop please",  # Twilio acts on single words only; so do we
        "please stop the noise at night",
        "帮助一下我们小区，电梯坏了",
        "1号楼电梯坏了",
        "12345热线打不通",
        "小区电梯坏了三天，物业不管",
        "请尽快处理",
    ],
)
def test_a_text_that_merely_contains_a_keyword_or_number_is_a_complaint(text: str) -> None:
    assert parse_resident_message(text) == Complaint(text)


@pytest.mark.parametrize("text", ["", "   ", "。", "\u200b"])
def test_an_empty_message_is_left_to_intake(text: str) -> None:
    # Intake answers it with "please describe the problem".
    assert parse_resident_message(text) == Complaint(text)


def test_a_complaint_keeps_the_text_exactly_as_sent() -> None:
    text = "  ＣＸ小区的路灯坏了！！  "
    assert parse_resident_message(text) == Complaint(text)
