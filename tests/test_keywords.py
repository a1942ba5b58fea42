"""The keyword engine: scoring, longest match, negatives, the head, confidence, evidence.

The engine is tested on small dictionaries written here; the last test routes
hand-written complaints of every first-level category with the shipped default
dictionary.
"""

from __future__ import annotations

import pytest

from bot.config_file import load_desk_config
from handlers.desk_config import DeskConfig
from nlp.keywords import CategoryKeywords, KeywordClassifier, find_terms
from nlp.normalise import normalise

# Far enough into a text to be out of its head (the first 40 characters).
FILLER = "，" + "情况说明" * 12 + "，"


def engine(*dictionaries: CategoryKeywords) -> KeywordClassifier:
    return KeywordClassifier(list(dictionaries))


HOUSING = CategoryKeywords("城乡建设", {"物业": 2, "小区": 1, "公交": 1})
ENVIRONMENT = CategoryKeywords("环境保护", {"噪音": 2, "污染": 3})
BUS = CategoryKeywords("公共交通", {"公交车站": 2, "公交车": 2})


# ---------------------------------------------------------------------- scoring


def test_nothing_found_is_an_empty_answer() -> None:
    classifier = engine(HOUSING, ENVIRONMENT)

    assert classifier.classify("") == []
    assert classifier.classify("我想反映一个情况") == []
    assert classifier.name == "keywords"


def test_categories_score_the_weights_of_their_keywords() -> None:
    classifier = engine(HOUSING, ENVIRONMENT)

    # 物业 2 + 小区 1 against 噪音 2.
    ranked = classifier.classify("小区物业不管，噪音")
    assert [(s.category, s.evidence) for s in ranked] == [
        ("城乡建设", ("物业", "小区")),
        ("环境保护", ("噪音",)),
    ]
    # 污染 3 + 噪音 2 against 物业 2 + 小区 1.
    ranked = classifier.classify("小区物业不管，噪音，污染")
    assert [s.category for s in ranked] == ["环境保护", "城乡建设"]


def test_repeats_count_with_diminishing_returns() -> None:
    classifier = engine(HOUSING, ENVIRONMENT)

    # 物业 (2) once loses to 污染 (3); twice it still does (2 x 1.41, not 4); four times wins.
    assert classifier.classify("物业，污染")[0].category == "环境保护"
    assert classifier.classify("物业物业，污染")[0].category == "环境保护"
    assert classifier.classify("物业物业物业物业，污染")[0].category == "城乡建设"


def test_longest_keyword_wins_and_hides_its_substrings() -> None:
    classifier = engine(HOUSING, BUS)

    ranked = classifier.classify("公交车站没有遮雨棚")

    assert [(s.category, s.evidence) for s in ranked] == [("公共交通", ("公交车站",))]
    # Apart, each is counted.
    ranked = classifier.classify("公交车太挤，公交线路太少")
    assert {s.category: s.evidence for s in ranked} == {
        "公共交通": ("公交车",),
        "城乡建设": ("公交",),
    }


def test_letter_case_is_ignored_and_evidence_keeps_the_configured_spelling() -> None:
    classifier = engine(CategoryKeywords("环境保护", {"KTV": 3}))

    assert classifier.classify("楼下ktv唱到半夜")[0].evidence == ("KTV",)


# --------------------------------------------------------------- negative keywords


def test_a_negative_keyword_rules_its_category_out() -> None:
    health = CategoryKeywords("卫生计生", {"医生": 3, "医院": 2}, ("兽医",))
    farming = CategoryKeywords("农村农业", {"兽医": 2, "生猪": 1})
    classifier = engine(health, farming)

    assert classifier.classify("医生说要住院")[0].category == "卫生计生"
    ranked = classifier.classify("医生说要住院，兽医不来给生猪看病")
    assert [s.category for s in ranked] == ["农村农业"]


def test_a_negative_phrase_hides_the_keywords_inside_it() -> None:
    health = CategoryKeywords("卫生计生", {"医院": 2}, ("宠物医院",))
    consumer = CategoryKeywords("商贸旅游", {"收费": 2, "医院": 1})
    classifier = engine(health, consumer)

    # 宠物医院 is one match: neither category's 医院 is counted.
    assert [(s.category, s.evidence) for s in classifier.classify("宠物医院收费太贵")] == [
        ("商贸旅游", ("收费",))
    ]
    assert {s.category: s.evidence for s in classifier.classify("医院收费太贵")} == {
        "商贸旅游": ("收费", "医院"),
        "卫生计生": ("医院",),
    }


# ------------------------------------------------------------------------ head


def test_a_keyword_in_the_head_counts_more() -> None:
    classifier = engine(HOUSING, ENVIRONMENT)

    assert classifier.classify("物业" + FILLER + "噪音")[0].category == "城乡建设"
    assert classifier.classify("噪音" + FILLER + "物业")[0].category == "环境保护"


# ------------------------------------------------------------------ confidence


def test_one_clear_category_is_sure() -> None:
    [score] = engine(HOUSING, ENVIRONMENT).classify("小区物业不管")

    assert score.confidence == 1.0


def test_thin_evidence_is_damped() -> None:
    [score] = engine(HOUSING, ENVIRONMENT).classify(FILLER + "小区")

    assert 0 < score.confidence < 0.34


def test_a_tie_is_not_sure() -> None:
    ranked = engine(HOUSING, ENVIRONMENT).classify("物业，噪音")

    assert [s.category for s in ranked] == ["城乡建设", "环境保护"]  # by name, on a tie
    assert ranked[0].confidence == ranked[1].confidence < 0.3


def test_confidence_falls_down_the_ranking_and_grows_with_the_margin() -> None:
    classifier = engine(HOUSING, ENVIRONMENT, BUS)

    ranked = classifier.classify("物业物业，小区，噪音，公交车")
    confidences = [s.confidence for s in ranked]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 < c <= 1 for c in confidences)

    narrow = classifier.classify("物业，小区，噪音")[0]
    wide = classifier.classify("物业，小区，物业，噪音")[0]
    assert narrow.category == wide.category == "城乡建设"
    assert wide.confidence > narrow.confidence


# -------------------------------------------------------------------- evidence


def test_evidence_is_the_strongest_keywords_first() -> None:
    words = {f"词{i}": 1 for i in range(10)} | {"重": 3, "中": 2}
    classifier = engine(CategoryKeywords("某类", words))

    [score] = classifier.classify("词1词2词3重词4词5中词6词7词8")

    assert score.evidence[:2] == ("重", "中")
    assert score.evidence[2:] == ("词1", "词2", "词3", "词4")  # then in order of appearance


def test_classification_is_deterministic_and_independent_of_dictionary_order() -> None:
    text = "小区物业不管，噪音扰民，公交车站太远，污染"
    forward = engine(HOUSING, ENVIRONMENT, BUS)
    backward = engine(BUS, ENVIRONMENT, HOUSING)

    assert forward.classify(text) == forward.classify(text) == backward.classify(text)


def test_find_terms_keeps_the_given_order() -> None:
    assert find_terms("着火了，燃气泄漏", ["燃气泄漏", "", "坍塌", "着火"]) == ["燃气泄漏", "着火"]


# --------------------------------------------------------- the shipped dictionary


# Written for these tests, one or more per first-level category; second-level
# categories where the complaint is theirs.
COMPLAINTS = [
    ("我们小区物业公司乱收物业费，公共区域漏水半年没人修，业委会也不管", "城乡建设"),
    ("开发商延期交房一年多，购房合同约定的违约金至今不给", "城乡建设"),
    ("老旧小区已经停水三天了，自来水公司说管网在抢修，什么时候恢复供水", "城乡建设"),
    ("菜市场门口流动摊贩占道经营，人行道被堵死，行人只能走机动车道", "城管执法"),
    ("隔壁住户在楼顶违章搭建两层铁皮房，举报多次没人来拆除", "违章建筑"),
    ("路口垃圾站的垃圾好几天没人清运，环卫工人也不来清扫", "市容环卫"),
    ("新建楼盘的楼间距太小，严重挡光，我家一楼全天没有日照", "城乡规划"),
    ("12路公交车班次太少，早高峰在公交站等四十分钟都等不到车", "公共交通"),
    ("火车站的出租车司机拒载，还不打表，乘客只能被迫议价", "交通运输"),
    ("快递员不送货上门，包裹直接放驿站，丢件了快递公司也不管", "交通运输"),
    ("村里的通村公路坑洼严重，大货车超载把路面压坏了", "交通运输"),
    ("社区党支部几年没有组织过党员活动，党费收缴也不公开", "党务政务"),
    ("今年的种粮补贴和耕地地力补贴到现在都没有发到农户手里", "农村农业"),
    ("村委会不公开村集体土地流转费的账目，村民要求村务公开", "农村农业"),
    ("公司拖欠我们农民工三个月工资，老板跑路了，劳动监察大队不管", "劳动和社会保障"),
    ("单位没有给我缴纳社保，离职后才发现养老保险断缴了五年", "劳动和社会保障"),
    ("退休金半年没有调整，想咨询企业退休人员养老金怎么计算", "劳动和社会保障"),
    ("医院误诊导致我父亲病情加重，要求追究医疗事故责任", "卫生计生"),
    ("乡镇卫生院乱开药，一个感冒开了八百元的药，医疗收费明显不合理", "卫生计生"),
    ("孩子的疫苗接种本丢了，社区卫生服务中心不给补办", "卫生计生"),
    ("在饭店吃饭吃出异物，后厨卫生很差，怀疑使用地沟油", "食品药品"),
    ("网购的电器有质量问题，商家拒绝退货，售后也不理，要求维护消费者权益", "商贸旅游"),
    ("小区电梯经常困人，维保公司来了也修不好，电梯年检已经过期", "商贸旅游"),
    ("跟旅行社报的低价团，导游强制购物，不买就不让上车", "商贸旅游"),
    ("健身房办的预付卡还没用完，老板就关门不见人了", "商业贸易"),
    ("有人在基本农田上非法占地建厂房，国土部门一直不处理", "国土资源"),
    ("山上有人非法采矿，开山炸石，已经引发山体滑坡", "国土资源"),
    ("我的电动车在楼下被盗，报警以后派出所一直没有立案", "政法"),
    ("孩子出生三个月了还上不了户口，户籍窗口说还要补材料", "政法"),
    ("学校老师在校外开补习班，强迫学生参加有偿补课", "教育文体"),
    ("幼儿园每学期额外收取资料费和校服费，家长意见很大", "教育文体"),
    ("我家是低保户，今年突然被取消低保，评议不公平", "民政"),
    ("养老院的护工虐待老人，老年人的伙食也很差", "民政"),
    ("附近化工厂晚上偷排废气，刺鼻的气味让人无法入睡", "环境保护"),
    ("楼下饭店的油烟直排，噪音扰民到半夜", "环境保护"),
    ("家里宽带经常断网，运营商一直拖着不来修，还乱扣费", "科技与信息产业"),
    ("镇干部收受礼金、公款吃喝，还利用职权为亲属谋利", "纪检监察"),
    ("某理财公司非法集资后爆雷，投资人的钱血本无归", "经济管理"),
]


@pytest.fixture(scope="module")
def default() -> DeskConfig:
    return load_desk_config(None)


@pytest.fixture(scope="module")
def shipped(default: DeskConfig) -> KeywordClassifier:
    return KeywordClassifier(
        [
            CategoryKeywords(c.code, c.keywords, tuple(c.negative_keywords))
            for c in default.categories
        ]
    )


@pytest.mark.parametrize(("complaint", "category"), COMPLAINTS)
def test_default_dictionary_routes_realistic_complaints(
    default: DeskConfig, shipped: KeywordClassifier, complaint: str, category: str
) -> None:
    ranked = shipped.classify(normalise(complaint))

    assert ranked, complaint
    assert ranked[0].category == category, ranked[:3]
    # Clear complaints are routed without waiting for a person.
    assert ranked[0].confidence >= default.desk.triage_confidence, ranked[:3]


def test_default_complaints_cover_every_first_level_category(default: DeskConfig) -> None:
    parents = {c.code: c.parent or c.code for c in default.categories}
    covered = {parents[category] for _, category in COMPLAINTS}
    assert covered == {c.code for c in default.categories if c.parent is None}
