"""Text normalisation: full-width forms, invisible characters, whitespace, simplified script."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlp.normalise import clean, normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("查询２６０００００１９", "查询260000019"),  # full-width digits
        ("ＡＢＣ ａｂｃ", "ABC abc"),  # full-width letters
        ("噪音\u3000扰民", "噪音 扰民"),  # ideographic space
        ("噪音\xa0扰民", "噪音 扰民"),  # no-break space
        ("  噪音 \t\n\u3000 扰民  ", "噪音 扰民"),  # runs fold to one space, ends trimmed
        ("噪\u200b音", "噪音"),  # zero-width space
        ("\ufeff噪音", "噪音"),  # byte-order mark
        ("噪音\x00\x07\x1b扰民", "噪音扰民"),  # control characters
        ("噪音\u202e扰民", "噪音扰民"),  # right-to-left override
        ("噪音\ue000扰民", "噪音扰民"),  # private use
        ("噪音\ud800扰民", "噪音扰民"),  # lone surrogate (from a broken encoder)
        ("", ""),
    ],
)
def test_normalise_forms_and_invisible_characters(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [
        ("環境污染", "环境污染"),
        ("醫院", "医院"),
        ("長沙市開福區", "长沙市开福区"),
        ("樓下燒烤店油煙擾民", "楼下烧烤店油烟扰民"),
        ("綜合執法局不作為", "综合执法局不作为"),
        ("電話：１３８００１３８０００", "电话:13800138000"),  # with NFKC
    ],
)
def test_normalise_converts_traditional_to_simplified(traditional: str, simplified: str) -> None:
    assert normalise(traditional) == simplified


@pytest.mark.parametrize(
    "text",
    [
        "我住在长沙市岳麓区望月湖小区3栋,楼下烧烤店油烟很大,请尽快处理。",
        # Simplified words whose characters are also traditional forms elsewhere.
        "着急 干部 头发 皇后 面条 于是 里面 发现 后面 系统",
        "查询 260000019",
        "iPhone 12 ABC-123",
    ],
)
def test_normalise_leaves_simplified_text_alone(text: str) -> None:
    assert normalise(text) == text


def test_clean_keeps_what_residents_wrote() -> None:
    # Staff read the stored text: full-width punctuation and traditional
    # characters stay; only invisible characters and whitespace change.
    assert clean("醫院門口，\u200b排隊！\u3000\u3000謝謝") == "醫院門口，排隊！ 謝謝"


@given(st.text())
def test_normalised_text_has_no_invisible_or_full_width_characters(text: str) -> None:
    result = normalise(text)
    assert result == result.strip()
    assert "  " not in result
    for char in result:
        assert unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co")
        assert not "\uff01" <= char <= "\uff5e"  # full-width ASCII forms
        assert char == " " or not char.isspace()
