"""Start-up of the text functions with the desk's own vocabulary.

jieba does not know the desk's department names (综合执法局), its keywords
(占道经营, 油烟净化器) or its districts, and splits them; ``load_nlp`` adds
them to the segmenter once at start-up. ``nlp`` itself knows nothing of the
config: this module turns the config into word lists.
"""

from __future__ import annotations

from handlers.desk_config import DeskConfig
from nlp import normalise, segment


def user_words(config: DeskConfig) -> list[str]:
    """Department names and aliases and every configured keyword, normalised, in order."""
    words: list[str] = []
    for department in config.departments:
        words += [department.name, department.short_name, *department.aliases]
    for category in config.categories:
        words += [*category.keywords, *category.negative_keywords]
    words += config.conduct.keywords
    words += config.conduct.officials
    words += config.conduct.private_parties
    words += config.urgent.keywords
    return _normalised(words)


def place_words(config: DeskConfig) -> list[str]:
    """The configured districts' names and aliases, normalised, in order."""
    return _normalised(
        [name for district in config.districts for name in (district.name, *district.aliases)]
    )


def load_nlp(config: DeskConfig) -> segment.Segmenter:
    """Build the converter and segmenter with the desk's words (slow: run it off the loop)."""
    normalise.load()
    return segment.load(user_words(config), place_words(config))


def _normalised(words: list[str]) -> list[str]:
    # Texts are normalised before they are segmented, so the words must be too.
    return list(dict.fromkeys(normalise.normalise(word) for word in words))
