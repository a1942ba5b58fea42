"""The desk's vocabulary for the segmenter, taken from the config."""

from __future__ import annotations

from handlers.desk_config import DeskConfig, DistrictConfig
from handlers.nlp_setup import place_words, user_words


def test_user_words_cover_names_aliases_and_keywords(desk_config: DeskConfig) -> None:
    words = user_words(desk_config)
    expected = ["市城市管理综合执法局", "城管局", "综合执法局", "占道", "态度恶劣", "燃气泄漏"]
    assert set(expected) <= set(words)
    assert len(words) == len(set(words))


def test_words_are_normalised_like_the_texts_they_match(desk_config: DeskConfig) -> None:
    traditional = desk_config.model_copy(
        update={
            "districts": [DistrictConfig(name="開福區", aliases=["開福", "ＫＦ區"])],
        }
    )
    assert place_words(traditional) == ["开福区", "开福", "KF区"]
