"""Facts residents write in a complaint: phone numbers, places, ticket numbers.

All functions take normalised text (``nlp.normalise.normalise``: ASCII digits,
simplified characters, single spaces) and return distinct matches in the order
they appear. They aim to be precise rather than complete: a staff member can
read the text for what they miss, but a wrong phone number or place on a
ticket card misleads.

``place_names`` reads jieba's part-of-speech tags, so the segmenter must be
built first (``nlp.segment.load``); ``places_in`` does the same work on tags
the caller already has.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nlp import segment
from nlp.ticket_numbers import find_ticket_numbers

__all__ = ["find_ticket_numbers", "phone_numbers", "place_names", "places_in"]

# Mobile numbers: 1[3-9] and nine more digits, grouped 3-4-4 or not at all,
# with an optional +86 / 0086 / 86 country code. The look-arounds keep
# numbers inside longer digit runs (ID cards, bank cards) out.
_MOBILE = r"(?:(?:\+|00)?86[ -]?)?(?P<mobile>1[3-9]\d[ -]?\d{4}[ -]?\d{4})"
# Landlines need their area code (010, 02x, 0xxx), written 0731-88888888,
# (0731)88888888 or +86 731 88888888; the local number is 7-8 digits and
# does not start with 0 or 1. Ticket numbers start with the year, never 0.
_AREA = r"10|2\d|[3-9]\d{2}"
_LANDLINE = (
    rf"(?:\(0(?P<area_paren>{_AREA})\) ?"
    rf"|0(?P<area>{_AREA})[ -]?"
    rf"|(?:\+|00)?86[ -]?(?P<area_intl>{_AREA})[ -]?)"
    r"(?P<local>[2-9]\d{2,3}[ -]?\d{4})"
)
_PHONE_RE = re.compile(rf"(?<![\d+])(?:{_MOBILE}|{_LANDLINE})(?!\d)")
_SEPARATORS = re.compile(r"[ -]")


def phone_numbers(text: str) -> list[str]:
    """Chinese mobile and landline numbers in ``text``, as digits only.

    Mobiles come back as eleven digits without the country code
    (``13800138000``); landlines with their area code and leading 0
    (``073188888888``).
    """
    found: dict[str, None] = {}
    for match in _PHONE_RE.finditer(text):
        if match["mobile"]:
            number = match["mobile"]
        else:
            area = match["area"] or match["area_paren"] or match["area_intl"]
            number = f"0{area}{match['local']}"
        found[_SEPARATORS.sub("", number)] = None
    return list(found)


# Words that end a place name (the longest one that fits is used). Single
# characters (路, 区) count only after a name (人民 + 路), or inside a longer
# token; two-character dictionary words ending in one (道路, 城市, 农村) are
# ordinary nouns.
_SUFFIXES = frozenset(
    {
        # administrative divisions
        "省", "市", "自治州", "州", "区", "县", "旗", "镇", "乡", "街道", "社区", "村",
        # streets
        "路", "东路", "西路", "南路", "北路", "中路", "大道", "街", "大街", "巷", "弄", "胡同",
        # estates and buildings
        "小区", "花园", "公寓", "大厦", "大楼", "广场", "家园", "新村", "山庄", "苑",
        # public places
        "学校", "中学", "小学", "大学", "学院", "幼儿园", "医院", "卫生院", "公园", "市场",
        "商场", "超市", "车站", "火车站", "汽车站", "地铁站", "机场", "码头", "体育馆",
        "图书馆", "工业园", "产业园",
    }
)  # fmt: skip
_SUFFIX_LENGTHS = sorted({len(suffix) for suffix in _SUFFIXES}, reverse=True)
_DIVISIONS = frozenset({"省", "市", "自治州", "州", "区", "县", "旗", "镇", "乡", "村"})
# Dictionary words that end like a division but name no particular place.
_GENERIC_PLACES = frozenset(
    {
        "居民区", "住宅区", "工业区", "商业区", "开发区", "保护区", "风景区", "老城区", "生活区",
        "办公区", "服务区", "城中村", "自然村", "行政村", "新农村", "大城市", "山区",
    }
)  # fmt: skip
# Common nouns that may stand before a suffix without making a name of it.
# (One adjective may: 幸福家园, 阳光小区.)
_GENERIC_PREFIXES = frozenset(
    {"居民", "住宅", "附近", "周边", "周围", "当地", "农村", "城市", "老旧", "商业", "公共"}
)
# Tags of tokens that can be part of a name: places, people, organisations,
# other proper nouns, abbreviations, numerals (五一大道, 第一中学), Latin letters.
_NAME_TAGS = frozenset({"ns", "nr", "nrt", "nrfg", "nz", "nt", "j", "ng", "m", "eng"})
# House numbers after a street or estate: 二段, 368号, 3栋, 2单元, B座, 1203室.
_UNITS = ("号", "栋", "幢", "单元", "室", "楼", "层", "座", "号楼", "期", "组", "段")
_NUMBER = r"[0-9A-Za-z]+|[一二三四五六七八九十百零两]+"
_NUMBER_TOKEN = re.compile(_NUMBER)
_UNIT_TOKEN = re.compile(rf"(?:{_NUMBER})(?:{'|'.join(_UNITS)})")
# Words after 市场 (or another suffix) that turn it into an office's name.
_OFFICE_WORDS = frozenset({"监督", "监管", "管理", "管理处", "管理所", "服务中心"})
# At most this many name tokens before a suffix (金星 北路, 麓 山南路).
_MAX_NAME_TOKENS = 3


def place_names(text: str) -> list[str]:
    """Addresses and named places in ``text`` (岳麓区望月湖街道, 湘雅医院), in order.

    Adjacent parts of one address come back as one span
    (``长沙市岳麓区麓山南路932号``). Call ``nlp.segment.load`` first.
    """
    return places_in(segment.tag(text))


def places_in(tagged: Sequence[tuple[str, str]]) -> list[str]:
    """``place_names`` on jieba ``(word, tag)`` pairs."""
    spans: dict[str, None] = {}
    current: list[str] = []
    index = 0
    while index < len(tagged):
        end = _part_at(tagged, index, continuing=bool(current))
        if end is None:
            if current:
                spans["".join(current)] = None
                current = []
            index += 1
            continue
        current.extend(word for word, _ in tagged[index:end])
        index = end
    if current:
        spans["".join(current)] = None
    return list(spans)


def _part_at(tagged: Sequence[tuple[str, str]], start: int, *, continuing: bool) -> int | None:
    """Where the address part starting at ``start`` ends, or None when none starts there."""
    word, flag = tagged[start]
    # A number's unit is no name: 1号线地铁站.
    glued = start > 0 and _NUMBER_TOKEN.fullmatch(tagged[start - 1][0]) is not None
    # A name then its suffix: 东塘 + 小区, 金星 + 北路, 人民 + 路.
    last = min(start + 1 + _MAX_NAME_TOKENS, len(tagged)) if not glued else start
    for end in range(start + 1, last):
        if _ends_place(tagged, end) and _is_name(tagged[start:end]):
            return end + 1
        if not _is_name_token(*tagged[end]):
            break
    if _is_place(word, flag):
        return start + 1
    if continuing:
        # 五一大道 + 368号, 万达广场 + B座, 人民路 + 步行街
        if _UNIT_TOKEN.fullmatch(word) or (len(word) >= 2 and _ends_place(tagged, start)):
            return start + 1
        if (
            _NUMBER_TOKEN.fullmatch(word)
            and start + 1 < len(tagged)
            and tagged[start + 1][0] in _UNITS
        ):
            return start + 2
    return None


def _ends_place(tagged: Sequence[tuple[str, str]], index: int) -> bool:
    """True when the token at ``index`` can end a place name where it stands.

    Not when an office's name goes on after it: 岳麓区市场监督管理局 is a
    bureau, not a market.
    """
    if not _is_suffix(*tagged[index]):
        return False
    if index + 1 == len(tagged):
        return True
    following = tagged[index + 1][0]
    return following not in _OFFICE_WORDS and not following.endswith("局")


def _suffix_of(word: str) -> str | None:
    for length in _SUFFIX_LENGTHS:
        if len(word) >= length and word[-length:] in _SUFFIXES:
            return word[-length:]
    return None


def _is_suffix(word: str, flag: str) -> bool:
    """True when ``word`` can end a place name: 路, 北路, 步行街, 山南路."""
    if word in _SUFFIXES:
        return True
    if _suffix_of(word) is None:
        return False
    return len(word) >= 3 or flag in _NAME_TAGS


def _is_place(word: str, flag: str) -> bool:
    """True when ``word`` alone names a place: 长沙市, 天心区, 湘雅医院."""
    if word in _SUFFIXES or word in _GENERIC_PLACES:
        return False
    if flag == "ns":
        return len(word) >= 2
    if len(word) < 3 or _suffix_of(word) is None:
        return False
    if flag in ("nt", "nr", "nrt", "nz"):
        return True
    # jieba tags many district names as common nouns (天心区/n).
    return flag == "n" and _suffix_of(word) in _DIVISIONS


def _is_name_token(word: str, flag: str) -> bool:
    return flag in _NAME_TAGS or (flag in ("n", "a") and word not in _GENERIC_PREFIXES)


def _is_name(tokens: Sequence[tuple[str, str]]) -> bool:
    """True when ``tokens`` can be the name before a suffix.

    Proper nouns and numerals always can; one common noun or adjective can
    (人民路, 坡子街, 幸福家园), but not after other words, which would
    swallow the sentence.
    """
    if len(tokens) == 1:
        return _is_name_token(*tokens[0])
    return all(flag in _NAME_TAGS for _, flag in tokens)
