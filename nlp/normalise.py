"""Text clean-up before anything reads it: NFKC, control characters, whitespace, simplified script.

NFKC turns full-width digits and letters (common from Chinese input methods)
into ASCII, so ``２６０００`` matches a ticket number; control characters are
dropped so nothing invisible reaches storage or a staff chat. ``normalise``
also converts traditional characters to simplified ones (OpenCC's ``t2s``), so
a resident writing 「環境污染」 matches the configured keyword 「环境污染」.
Simplified text passes through unchanged.

The converter reads OpenCC's packaged dictionaries once (a few milliseconds):
``load()`` does it at start-up; without it the first ``normalise`` call does.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Protocol

_WHITESPACE_RUN = re.compile(r"\s+")


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


def clean(text: str) -> str:
    """The text as stored and shown: no control or format characters, whitespace folded.

    Full-width punctuation is kept, because staff and residents read it.
    """
    # Printable text has none of those categories: skip the per-character
    # look-up, which is most of the cost of a long text.
    kept = (
        text
        if text.isprintable()
        else "".join(
            char
            for char in text
            if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co") or char in "\n\t"
        )
    )
    return _WHITESPACE_RUN.sub(" ", kept).strip()


def normalise(text: str) -> str:
    """The text as machines read it: ``clean`` after NFKC, in simplified characters.

    NFKC folds full-width digits and letters to ASCII and ``\\u3000``/``\\xa0`` to
    spaces; ``clean`` drops control and format characters (zero-width spaces,
    BOMs, lone surrogates, which the converter could not encode) and folds
    whitespace runs to one space.
    """
    cleaned = clean(unicodedata.normalize("NFKC", text))
    if cleaned.isascii():
        return cleaned
    return _to_simplified().convert(cleaned)


def load() -> None:
    """Read the traditional-to-simplified dictionaries now (idempotent)."""
    _to_simplified()


@cache
def _to_simplified() -> _Converter:
    # Imported here: the package lists its data directory at import.
    import opencc

    converter: _Converter = opencc.OpenCC("t2s")
    return converter
