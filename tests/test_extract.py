"""Extraction: phone numbers and places residents write, precise rather than greedy."""

from __future__ import annotations

import pytest

from nlp import segment
from nlp.extract import find_ticket_numbers, phone_numbers, place_names, places_in
from nlp.normalise import normalise


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("我的电话13800138000", ["13800138000"]),
        ("电话:138 0013 8000", ["13800138000"]),
        ("手机 138-0013-8000 谢谢", ["13800138000"]),
        ("+86 138-0013-8000", ["13800138000"]),
        ("+8613912345678", ["13912345678"]),
        ("8613800138000", ["13800138000"]),
        ("008619912345678", ["19912345678"]),
        ("电话１３８００１３８０００", ["13800138000"]),  # full-width, once normalised
        ("座机0731-88888888", ["073188888888"]),
        ("座机0731-8888888", ["07318888888"]),
        ("（0731）84567890", ["073184567890"]),  # full-width brackets, once normalised
        ("(0731) 84567890", ["073184567890"]),
        ("010 82345678", ["01082345678"]),
        ("020-38888888", ["02038888888"]),
        ("+86 731 8888 8888", ["073188888888"]),
        ("手机13800138000,座机0731-84567890", ["13800138000", "073184567890"]),
        ("13800138000 重复一遍 138 0013 8000", ["13800138000"]),  # distinct
    ],
)
def test_phone_numbers(text: str, found: list[str]) -> None:
    assert phone_numbers(normalise(text)) == found


@pytest.mark.parametrize(
    "text",
    [
        "查询工单260000019",  # a ticket number
        "工单2600000191",  # a ten-digit ticket number
        "身份证430104199001011234",  # an ID card number
        "身份证130102199003071234",  # one that starts like a mobile
        "43010419900101123X",
        "银行卡6222021234567890123",
        "12138001380001",  # a mobile inside a longer run
        "138001380001",  # twelve digits
        "1380013800",  # ten digits
        "12800138000",  # no such mobile prefix
        "2024-03-15 13:45",  # a date and a time
        "3月5号下午",
        "0731888",  # area code and too short a number
        "010-12345678",  # local numbers never start with 1
        "12345热线",
        "金额13800元",
    ],
)
def test_phone_numbers_ignore_other_numbers(text: str) -> None:
    assert phone_numbers(normalise(text)) == []


def test_ticket_numbers_are_re_exported() -> None:
    assert find_ticket_numbers("查询260000019,电话13800138000") == ["260000019"]


@pytest.fixture(scope="module", autouse=True)
def segmenter() -> segment.Segmenter:
    """place_names reads the shared segmenter's tags."""
    return segment.load()


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (
            "我住在长沙市岳麓区望月湖街道荣湾社区3栋2单元,楼下烧烤店油烟很大",
            ["长沙市岳麓区望月湖街道荣湾社区3栋2单元"],
        ),
        ("芙蓉区五一大道368号的工地晚上施工", ["芙蓉区五一大道368号"]),
        ("雨花区圭塘街道东塘小区门口有人占道经营", ["雨花区圭塘街道东塘小区"]),
        ("天心区坡子街附近的农贸市场卫生很差", ["天心区坡子街"]),
        ("开福区四方坪镇黄花村的自来水停了三天", ["开福区四方坪镇黄花村"]),
        ("我在湘雅医院看病,排队太久", ["湘雅医院"]),
        ("我家在浏阳市大瑶镇,附近的化工厂排放废气", ["浏阳市大瑶镇"]),
        ("金星北路万达广场B座1203室楼上漏水", ["金星北路万达广场B座1203室"]),
        (
            "長沙縣星沙街道涼塘路和開元路交叉口紅綠燈壞了",  # traditional, once normalised
            ["长沙县星沙街道凉塘路", "开元路"],
        ),
        ("湖南省长沙市开福区湘江中路二段36号", ["湖南省长沙市开福区湘江中路二段36号"]),
        ("我是望月湖小区的居民", ["望月湖小区"]),
        ("住在幸福家园5栋的居民反映电梯坏了", ["幸福家园5栋"]),
        ("人民路步行街噪音很大", ["人民路步行街"]),
        ("岳麓山公园的厕所没人打扫", ["岳麓山公园"]),
        ("芙蓉区人民医院挂号难,芙蓉区人民医院收费乱", ["芙蓉区人民医院"]),  # distinct
        ("我向岳麓区市场监督管理局投诉过", ["岳麓区"]),  # a bureau, not a market
    ],
)
def test_place_names(text: str, found: list[str]) -> None:
    assert place_names(normalise(text)) == found


@pytest.mark.parametrize(
    "text",
    [
        "我打电话给区政府没人接",
        "这个问题市里不管,区里也不管",
        "他们说明天再来处理",
        "3月5号上午10点我去办事,窗口工作人员态度很差",  # a date is no house number
        "居民小区里的道路坑坑洼洼",  # generic places name no place
        "城市道路两边乱停车",
        "学校门口有人摆摊",
        "我去医院看病",
        "1号线地铁站里很脏",
        "农村的路太烂了",
        "请尽快处理,谢谢",
        "",
    ],
)
def test_no_place_names(text: str) -> None:
    assert place_names(normalise(text)) == []


def test_places_in_tags() -> None:
    # Without jieba: the caller's own tags.
    tagged = [("我", "r"), ("在", "p"), ("坡子", "n"), ("街", "n"), ("3", "m"), ("号", "m")]
    assert places_in(tagged) == ["坡子街3号"]
    assert places_in([("3", "m"), ("号", "m"), ("楼", "n")]) == []
