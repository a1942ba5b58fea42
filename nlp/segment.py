"""Chinese word segmentation with jieba, built once by an explicit ``load()``.

jieba builds its prefix dictionary lazily on first use (one to two seconds
from its cache); ``load()`` does it at start-up instead, so the first
resident does not wait, and silences jieba's start-up chatter.

``load(user_words)`` also teaches jieba the desk's own words (department
names and aliases, configured keywords) so that 综合执法局 or 油烟净化器 come
out as one token instead of 综合/执法局.

We use our own ``jieba.Tokenizer`` rather than jieba's global one. jieba's
``add_word`` mutates the dictionary that concurrent ``cut`` calls read and is
not thread-safe; here words are only ever added to a tokenizer that is still
being built and not yet published, so a reload with other words builds a new
``Segmenter`` and swaps it in with one assignment while requests keep using
the old one. It also keeps the desk's words out of anyone else's use of
jieba, and lets tests compare segmentations with and without user words.
The price is memory (about 70 MB per ``Segmenter``), so build one per process.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable
from typing import Any

# Tags for user words jieba does not know: jieba's "other proper noun", and
# "place name" for the places we are told about.
_USER_WORD_TAG = "nz"
_PLACE_TAG = "ns"

_lock = threading.Lock()
# The words last passed to load() and the segmenter built from them.
_loaded: tuple[tuple[tuple[str, ...], tuple[str, ...]], Segmenter] | None = None


class Segmenter:
    """A jieba tokenizer and part-of-speech tagger with the desk's words added.

    Building one takes a second or two (jieba's dictionary cache); once built
    it is only read, so one instance can serve every thread.
    """

    def __init__(self, user_words: Iterable[str] = (), places: Iterable[str] = ()) -> None:
        jieba, posseg = _import_jieba()
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        added: dict[str, None] = {}
        for word, place in [*((w, False) for w in user_words), *((w, True) for w in places)]:
            # jieba never yields a token with a space in it, and single
            # characters are tokens already.
            if len(word) < 2 or any(char.isspace() for char in word):
                continue
            # A word jieba already knows keeps its part-of-speech tag (unless
            # we know it is a place); add_word still raises its frequency so
            # that it wins over its own parts.
            if place:
                tag: str | None = _PLACE_TAG
            elif tokenizer.FREQ.get(word, 0) > 0:
                tag = None
            else:
                tag = _USER_WORD_TAG
            tokenizer.add_word(word, tag=tag)
            added[word] = None
        self._tokenizer: Any = tokenizer
        self._tagger: Any = _tagger_for(posseg, tokenizer)
        self.user_words: tuple[str, ...] = tuple(added)

    def words(self, text: str, *, hmm: bool = True) -> list[str]:
        """Words of ``text`` in jieba's accurate mode, without whitespace tokens.

        ``hmm=False`` skips jieba's HMM guess at words missing from its
        dictionary (their characters come out one by one): about half the
        cost, for callers that read character n-grams anyway.
        """
        return [word for word in self._tokenizer.lcut(text, HMM=hmm) if word.strip()]

    def tagged(self, text: str) -> list[tuple[str, str]]:
        """``(word, part-of-speech)`` pairs of ``text``, jieba's tag set (``ns`` = place)."""
        return [(pair.word, pair.flag) for pair in self._tagger.lcut(text) if pair.word.strip()]


def load(user_words: Iterable[str] = (), places: Iterable[str] = ()) -> Segmenter:
    """Build the shared segmenter with these extra words (idempotent for the same words).

    ``places`` are words tagged as place names (districts, towns). Call it
    at start-up, before any ``segment`` call; calling it again with other
    words builds a new segmenter and swaps it in.
    """
    global _loaded
    words = (tuple(dict.fromkeys(user_words)), tuple(dict.fromkeys(places)))
    with _lock:
        if _loaded is not None and _loaded[0] == words:
            return _loaded[1]
        segmenter = Segmenter(*words)
        _loaded = (words, segmenter)
        return segmenter


def current() -> Segmenter:
    """The shared segmenter, built without user words if ``load()`` was never called."""
    loaded = _loaded
    return loaded[1] if loaded is not None else load()


def segment(text: str, *, hmm: bool = True) -> list[str]:
    """Words of ``text`` in jieba's accurate mode (call ``load()`` first).

    ``hmm``: as for ``Segmenter.words``.
    """
    return current().words(text, hmm=hmm)


def tag(text: str) -> list[tuple[str, str]]:
    """``(word, part-of-speech)`` pairs of ``text`` (call ``load()`` first)."""
    return current().tagged(text)


def _import_jieba() -> tuple[Any, Any]:
    with warnings.catch_warnings():
        # jieba 0.42 imports pkg_resources, which setuptools deprecates (the
        # warning's category changed across setuptools versions), and its
        # source has invalid escape sequences, reported when it is compiled
        # without a cached .pyc.
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated as an API")
        warnings.filterwarnings(
            "ignore", message="Deprecated call to `pkg_resources", category=DeprecationWarning
        )
        for category in (DeprecationWarning, SyntaxWarning):
            warnings.filterwarnings("ignore", message="invalid escape sequence", category=category)
        import jieba
        import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba, jieba.posseg


def _tagger_for(posseg: Any, tokenizer: Any) -> Any:
    """A part-of-speech tagger over ``tokenizer``, reusing jieba's loaded tag table.

    ``POSTokenizer(tokenizer)`` would read jieba's dictionary file a second
    time (about a second) to build the word->tag table that importing
    ``jieba.posseg`` already built; we copy that table instead. jieba is
    pinned to 0.42.x, whose ``POSTokenizer`` keeps exactly these two attributes.
    """
    tagger = object.__new__(posseg.POSTokenizer)
    tagger.tokenizer = tokenizer
    tagger.word_tag_tab = dict(posseg.dt.word_tag_tab)
    # Merge the user words' tags now, not inside the first concurrent cut.
    tagger.makesure_userdict_loaded()
    return tagger
