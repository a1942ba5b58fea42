"""Chinese word segmentation with jieba, loaded once by an explicit ``load()``.

jieba builds its prefix dictionary lazily on first use (about a second from
its cache); ``load()`` does it at start-up instead, so the first resident does
not wait, and silences jieba's start-up chatter.
"""

from __future__ import annotations

import logging
import warnings

_loaded = False


def load() -> None:
    """Initialise jieba's dictionary (idempotent)."""
    global _loaded
    if _loaded:
        return
    with warnings.catch_warnings():
        # jieba 0.42 imports pkg_resources, deprecated by setuptools.
        warnings.filterwarnings(
            "ignore", message="pkg_resources is deprecated", category=UserWarning
        )
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="jieba")
        import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    _loaded = True


def segment(text: str) -> list[str]:
    """Words of ``text`` in jieba's accurate mode (call ``load()`` first)."""
    import jieba

    return [word for word in jieba.lcut(text) if word.strip()]
