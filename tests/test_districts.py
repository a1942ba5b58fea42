"""District routing: a district's own office takes some categories there."""

from __future__ import annotations

import pytest
from conftest import make_desk_config

from handlers.desk_config import DeskConfig
from handlers.routing import Router
from nlp.normalise import normalise


def desk_with_district() -> DeskConfig:
    data = make_desk_config().model_dump()
    data["departments"].append(
        {"code": "yuelu_zhujian", "name": "岳麓区住房和城乡建设局", "short_name": "岳麓区住建局"}
    )
    data["districts"] = [
        {"name": "岳麓区", "aliases": ["岳麓"], "routes": {"城乡建设": "yuelu_zhujian"}}
    ]
    return DeskConfig.model_validate(data)


@pytest.mark.parametrize(
    ("text", "department"),
    [
        ("岳麓区某小区电梯坏了，物业不管", "yuelu_zhujian"),  # the district's own office
        ("岳麓某小区物业不管，电梯坏了", "yuelu_zhujian"),  # by its alias
        ("芙蓉区某小区电梯坏了，物业不管", "zhujian"),  # no route for that district
        ("岳麓区马路边摊贩占道经营", "chengguan"),  # a subcategory the district does not route
        ("岳麓区工厂排污有臭味", "huanbao"),  # another category: the city department
    ],
)
def test_district_routes_override_the_city_department(text: str, department: str) -> None:
    decision = Router(desk_with_district()).route(normalise(text))
    assert decision.department == department


def test_a_district_route_must_name_known_category_and_department() -> None:
    data = desk_with_district().model_dump()
    data["districts"][0]["routes"] = {"城乡建设": "nobody"}
    with pytest.raises(ValueError, match="district '岳麓区' names unknown department 'nobody'"):
        DeskConfig.model_validate(data)
    data["districts"][0]["routes"] = {"火星": "zhujian"}
    with pytest.raises(ValueError, match="routes unknown category '火星'"):
        DeskConfig.model_validate(data)
