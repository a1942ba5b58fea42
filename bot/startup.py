"""Opening the database at start-up, with errors an operator can act on.

An unreachable database fails with the URL (password hidden) and the driver's
own reason; a PostgreSQL schema behind the code fails with the command that
migrates it. The embedded SQLite default is migrated automatically.
"""

from __future__ import annotations

import logging
from pathlib import Path

from handlers.desk_config import DeskConfig
from handlers.routing import trained_with_fallback
from nlp.classifier import Classifier
from storage.db import create_engine, is_sqlite, safe_url
from storage.migrate import current_revision, head_revision, upgrade
from storage.unit_of_work import Database

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """A problem with the environment; ``str`` is the whole message for the operator."""


def _driver_reason(exc: BaseException) -> str:
    # SQLAlchemy wraps the driver's exception; the original says what went wrong.
    original = getattr(exc, "orig", None) or exc.__cause__ or exc
    return f"{type(original).__name__}: {original}".strip()


async def open_database(url: str, *, migrate: bool | None = None) -> Database:
    """Connect, check (or apply) migrations, and return the Database.

    ``migrate=None`` migrates SQLite automatically and only checks PostgreSQL.
    """
    try:
        engine = create_engine(url)
    except Exception as exc:
        raise StartupError(f"invalid DATABASE_URL {safe_url(url)}: {exc}") from exc
    auto = is_sqlite(url) if migrate is None else migrate
    try:
        if auto:
            await upgrade(engine)
        at = await current_revision(engine)
    except Exception as exc:
        await engine.dispose()
        raise StartupError(f"cannot open database {safe_url(url)}: {_driver_reason(exc)}") from exc
    head = head_revision()
    if at != head:
        await engine.dispose()
        raise StartupError(
            f"database {safe_url(url)} is at schema {at or 'none'}, the code needs {head}: "
            "run `complaint-desk db upgrade`"
        )
    logger.info("database %s at schema %s", safe_url(url), at)
    return Database(engine)


def load_classifier(path: Path | None, config: DeskConfig) -> Classifier | None:
    """The trained engine from ``path`` with the keyword fallback, or None for keywords only.

    A model that cannot be read stops the start: serving on a silently
    different engine would route differently from what the operator chose.
    """
    if path is None:
        return None
    from nlp.trained import ModelFileError, load_model

    try:
        model = load_model(path)
    except (OSError, ModelFileError) as exc:
        raise StartupError(f"cannot load classifier model {path}: {exc}") from exc
    logger.info("classifier: trained model %s with keyword fallback", path)
    return trained_with_fallback(config, model)
