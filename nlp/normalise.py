"""Text clean-up before anything reads it: NFKC, control characters, whitespace.

NFKC turns full-width digits and letters (common from Chinese input methods)
into ASCII, so ``２６０００`` matches a ticket number; control characters are
dropped so nothing invisible reaches storage or a staff chat.
"""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE_RUN = re.compile(r"\s+")


def clean(text: str) -> str:
    """The text as stored and shown: no control or format characters, whitespace folded.

    Full-width punctuation is kept, because staff and residents read it.
    """
    kept = "".join(
        char
        for char in text
        if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co") or char in "\n\t"
    )
    return _WHITESPACE_RUN.sub(" ", kept).strip()


def normalise(text: str) -> str:
    """The text as machines read it: ``clean`` after NFKC (full-width digits -> ASCII)."""
    return clean(unicodedata.normalize("NFKC", text))
