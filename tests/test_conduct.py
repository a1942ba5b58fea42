"""Conduct complaints on the shipped desk: 60 hand-written messages.

Half are conduct complaints that name a department (they must go to the
supervision office and record the accused); half are ordinary complaints that
merely mention a department, some with misconduct words aimed at a company or
a neighbour (they must route as ordinary complaints). Written for this test,
not taken from any corpus.
"""

from __future__ import annotations

import pytest

from bot.config_file import load_desk_config
from handlers.desk_config import DeskConfig
from handlers.routing import CONDUCT_CATEGORY, Router
from nlp.normalise import normalise

CONDUCT = [
    ("我去社保局办理退休手续，窗口工作人员态度恶劣，还让我明天再来", ("renshe",)),
    ("城管队员执法时态度蛮横，把我的三轮车直接拖走了", ("chengguan",)),
    ("住建局和城管局互相推诿，小区违建问题三年没人管", ("zhujian", "chengguan")),
    ("派出所民警接警后敷衍了事，被盗电动车至今没有下文", ("gongan",)),
    ("车管所办事效率低下，排了一上午队窗口只开一个", ("gongan",)),
    ("不动产登记中心的工作人员故意刁难，材料齐全也不给办", ("ziran_ziyuan",)),
    ("市场监管局接到举报后不作为，过期食品照样在卖", ("shichang",)),
    ("环保局对工厂偷排废水不作为，投诉多次无人处理", ("shengtai",)),
    ("教育局的领导推诿扯皮，学位问题一直拖着不办", ("jiaoyu",)),
    ("卫健委对诊所违规行医的举报久拖不办", ("weijian",)),
    ("民政局婚姻登记处工作人员上班玩手机，让群众干等", ("minzheng",)),
    ("交通局运管所的人收了红包就放行超载车辆", ("jiaotong",)),
    ("劳动监察大队对欠薪投诉踢皮球，说不归他们管", ("renshe",)),
    ("农业农村局的干部下乡检查吃拿卡要", ("nongye",)),
    ("城管局乱收费，摆摊每天要交五十元管理费却没有收据", ("chengguan",)),
    ("房管局窗口门难进脸难看事难办", ("zhujian",)),
    ("交警队的辅警态度差，还骂人", ("gongan",)),
    ("商务局对预付卡跑路的投诉一直敷衍", ("shangwu",)),
    ("国土局工作人员以权谋私，帮亲戚违规办证", ("ziran_ziyuan",)),
    ("住房保障中心审核公租房拖着不办，已经半年了", ("zhujian",)),
    ("我举报后环保局的人把我的信息泄露给企业，现在被打击报复", ("shengtai",)),
    ("社保中心办事员擅离职守，上午十点窗口还没人", ("renshe",)),
    ("城管大队对占道经营慢作为，投诉十几次都没人来", ("chengguan",)),
    ("市监局对我的投诉推诿，说找消协，消协又说找市监局", ("shichang",)),
    ("派出所办户口的民警态度冷硬横推，一句话都不解释", ("gongan",)),
    ("卫生监督所的执法人员索贿", ("weijian",)),
    ("教体局对学校乱收费的举报不作为，只回复已转办", ("jiaoyu",)),
    ("规划局审批故意刁难，同样的材料退回五次", ("ziran_ziyuan",)),
    ("救助站工作人员对流浪老人不管不问，敷衍了事", ("minzheng",)),
    ("运管处执法人员乱作为，随意扣车罚款", ("jiaotong",)),
]

ORDINARY = [
    "小区物业推诿不管，电梯坏了一个月，希望住建局督促维修",
    "楼下烧烤店油烟噪音扰民到凌晨，请环保局来查一查",
    "我们村的灌溉水渠堵了，希望农业农村局帮忙疏通",
    "公交车站牌被撞坏了，请交通局尽快修复",
    "开发商延期交房还态度恶劣，请住建局监管",
    "学校强制订购教辅资料乱收费，请教育局调查",
    "超市出售过期牛奶，已向市场监管局举报，请尽快处理",
    "公司拖欠三个月工资，老板推诿说没钱，请劳动监察大队帮忙",
    "邻居在楼顶违章搭建阳光房，请城管局拆除",
    "请问社保局的退休金什么时候调整",
    "医院的医生态度差，挂号排队两个小时，请卫健委规范管理",
    "房东乱收费，水电费比正常价格高一倍，请物价局管一管",
    "希望民政局增加社区养老服务站点",
    "快递员态度恶劣，包裹被摔坏，希望市场监管局处理",
    "路口红绿灯时间太短，老人过马路危险，请交警调整",
    "工地夜间施工噪音扰民，施工单位推诿说有许可证，请城管执法",
    "请自然资源局公布我们村的土地规划情况",
    "饭店老板敷衍了事，吃出异物不肯赔偿，请市场监管部门处理",
    "希望教育局增加小学学位，孩子上学要跑很远",
    "中介乱收费还刁难租户，押金不退，请住建局整治",
    "河道有死鱼和臭味，怀疑上游工厂排污，请环保部门检测",
    "小区门口流动摊贩占道经营，请城管管一管",
    "我想咨询人社局的失业金怎么申领",
    "包工头拖欠农民工工资不作为，请人社部门帮我们讨薪",
    "商家预付卡卷款跑路，请商务局介入",
    "村里的路灯坏了半年，希望有关部门修一下",
    "出租车司机绕路还态度蛮横，请交通运输局处理",
    "养殖场臭味很大，请农业局和环保局一起查一下",
    "物业公司乱收费，停车费一年涨三次，请物价局核查",
    "请问派出所办理居住证需要哪些材料",
]


@pytest.fixture(scope="module")
def shipped() -> DeskConfig:
    """The desk a new centre gets."""
    return load_desk_config(None)


@pytest.fixture(scope="module")
def router(shipped: DeskConfig) -> Router:
    """Routing with the shipped keyword dictionary."""
    return Router(shipped)


def test_the_set_has_sixty_messages_half_of_them_conduct() -> None:
    assert (len(CONDUCT), len(ORDINARY)) == (30, 30)


def test_conduct_set_routes_at_least_95_percent_right_and_never_to_the_accused(
    router: Router, shipped: DeskConfig
) -> None:
    supervision = shipped.desk.supervision_department
    wrong: list[str] = []
    for text, accused in CONDUCT:
        decision = router.route(normalise(text))
        if decision.department in decision.accused_departments:
            pytest.fail(f"sent to the accused department: {text}")
        right = (
            decision.category == CONDUCT_CATEGORY
            and decision.department == supervision
            and set(accused) <= set(decision.accused_departments)
        )
        if not right:
            wrong.append(f"conduct: {text} -> {decision}")
    for text in ORDINARY:
        decision = router.route(normalise(text))
        if decision.category == CONDUCT_CATEGORY or decision.department == supervision:
            wrong.append(f"ordinary: {text} -> {decision.category}/{decision.department}")
    accuracy = 1 - len(wrong) / (len(CONDUCT) + len(ORDINARY))
    assert accuracy >= 0.95, "\n".join(wrong)


@pytest.mark.parametrize(("text", "accused"), CONDUCT[:8])
def test_conduct_names_the_accused(router: Router, text: str, accused: tuple[str, ...]) -> None:
    decision = router.route(normalise(text))
    assert decision.category == CONDUCT_CATEGORY
    assert decision.accused_departments[: len(accused)] == accused


@pytest.mark.parametrize(
    "text",
    [
        "小区物业推诿不管，希望住建局督促",  # aimed at the 物业
        "开发商态度恶劣，请住建局监管",  # aimed at the developer
        "老板推诿说没钱，请劳动监察大队帮忙",  # aimed at the employer
    ],
)
def test_misconduct_words_aimed_at_a_company_are_ordinary(router: Router, text: str) -> None:
    decision = router.route(normalise(text))
    assert decision.category != CONDUCT_CATEGORY
    assert decision.accused_departments == ()
