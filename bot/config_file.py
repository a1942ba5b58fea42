"""Read the desk's TOML config file and say exactly where it is wrong.

``load_desk_config`` returns a validated ``DeskConfig`` or raises one
``ConfigFileError`` whose text is ``<file>:<line>: <what is wrong>``, the form
editors and terminals turn into a jump to the line. An administrator edits this
file by hand, so a bad file must stop the process with a message that points at
the line, never with a traceback or a half-loaded desk.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, get_origin

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from handlers.desk_config import DeskConfig

Loc = tuple[str | int, ...]

# A TOML key part: bare, "basic" or 'literal'. Enough to find where a key is
# written; tomllib has already checked the syntax before we look.
_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]")
_KEY_LINE = re.compile(rf"^\s*({_DOTTED})\s*=")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
# Fields whose values name another entry; cross-reference errors are about them.
_REFERENCE_FIELDS = {"supervision_department", "department", "co_departments", "parent"}


class ConfigFileError(Exception):
    """The config file cannot be used; ``str()`` is the message for the operator."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file, self.line, self.problem = file, line, problem
        super().__init__(f"{file}: {problem}" if line is None else f"{file}:{line}: {problem}")


def load_desk_config(path: Path | None = None) -> DeskConfig:
    """Read, parse and validate the desk config; ``None`` means the packaged default."""
    resource: Traversable = files("bot") / "default_desk.toml" if path is None else path
    try:
        data = resource.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigFileError(str(resource), None, "file not found") from exc
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
        raise ConfigFileError(str(resource), None, problem) from exc
    return parse_desk_config(data, str(resource))


def parse_desk_config(data: bytes, name: str) -> DeskConfig:
    """Validate the bytes of a config file; ``name`` is used in error messages."""
    try:
        # utf-8-sig: Windows Notepad may save a byte-order mark, which TOML rejects.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8, not GBK"
        raise ConfigFileError(name, line, problem) from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        if found is None:
            # "At end of document" (an unclosed string, say): the last written
            # line is the nearest honest answer.
            line, message = len(text.rstrip().splitlines()) or 1, message.split(" (at ")[0]
        else:
            line, message = int(found[1]), f"{message[: found.start()]} (column {found[2]})"
        raise ConfigFileError(name, line, f"TOML syntax error: {message}") from exc
    try:
        return DeskConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # The first problem in the file, not in the model's field order: the
        # operator reads and fixes from the top.
        line, first = min((_error_line(e, raw, text), i) for i, e in enumerate(errors))
        problem = _error_message(errors[first])
        if more := len(errors) - 1:
            problem += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigFileError(name, line, problem) from None


def _error_line(error: ErrorDetails, raw: dict[str, Any], text: str) -> int:
    if error["loc"]:
        return locate(text, tuple(error["loc"]))
    # A model_validator error has no loc: find the value its message is about.
    path = _reference_path(error["msg"].removeprefix("Value error, "), raw)
    return locate(text, path) if path else 1


def _error_message(error: ErrorDetails) -> str:
    loc, message = tuple(error["loc"]), error["msg"].removeprefix("Value error, ")
    where = ".".join(f"[{p}]" if isinstance(p, int) else p for p in loc).replace(".[", "[")
    if not loc:
        return message
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (misspelt, or not a setting of this section)"
    if error["type"] == "missing" and len(loc) == 1:
        field = DeskConfig.model_fields.get(where)
        if field is not None and get_origin(field.annotation) is list:
            return f"[[{where}]] tables are missing"
        return f"[{where}] section is missing"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    value = error.get("input")
    if isinstance(value, str | int | float) and len(repr(value)) <= 60:
        message += f" (got {value!r})"
    return f"{where}: {message}"


def _reference_path(message: str, raw: dict[str, Any]) -> Loc | None:
    """Where the value a cross-reference error names is written, from the error's wording."""
    twice = re.match(r"(department|category) code defined twice: ([^,]+)", message)
    if twice:
        table = "departments" if twice[1] == "department" else "categories"
        hits = [i for i, item in enumerate(raw.get(table, [])) if item.get("code") == twice[2]]
        return (table, hits[1], "code") if len(hits) > 1 else None
    quoted = re.findall(r"'([^']*)'", message)
    if not quoted:
        return None
    # "category 'X' names unknown department 'Y'": Y is the bad value, X says whose.
    bad, owner = quoted[-1], quoted[0] if len(quoted) > 1 else None
    for path, value in _leaves(raw, ()):
        if value != bad or not set(path) & _REFERENCE_FIELDS:
            continue
        index = path[1] if len(path) > 1 else None
        item = raw[str(path[0])][index] if isinstance(index, int) else {}
        if owner is None or owner in item.values():
            return path
    return None


def _leaves(node: Any, path: Loc) -> Iterator[tuple[Loc, Any]]:
    if isinstance(node, dict | list):
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in pairs:
            yield from _leaves(value, (*path, key))
    else:
        yield path, node


def locate(text: str, loc: Loc) -> int:
    """The line (1-based) where the key at ``loc`` is written, or its nearest table, or 1.

    A key inside an inline table or an array is reported at the line of the key
    holding it, which is where TOML 1.0 writes an inline table.
    """
    best_line, best_depth = 1, 0
    for path, number in _key_positions(_code_lines(text)):
        if len(path) > best_depth and loc[: len(path)] == path:
            best_line, best_depth = number, len(path)
    return best_line


def _code_lines(text: str) -> list[tuple[int, str]]:
    """Numbered lines, without those inside multi-line strings (they can look like keys)."""
    kept: list[tuple[int, str]] = []
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not in_string:
            kept.append((number, line))
        if (line.count('"""') + line.count("'''")) % 2:
            in_string = not in_string
    return kept


def _key_positions(lines: list[tuple[int, str]]) -> Iterator[tuple[Loc, int]]:
    """Every table header and ``key =`` line with the full path it defines."""
    table: Loc = ()
    array_index: dict[Loc, int] = {}  # the latest element of each [[array]]

    def resolve(parts: list[str]) -> Loc:
        path: Loc = ()
        for part in parts:
            path = (*path, part)
            if path in array_index:
                path = (*path, array_index[path])
        return path

    for number, line in lines:
        if header := _HEADER.match(line):
            parts = _split(header[2])
            if header[1] == "[[":
                array = (*resolve(parts[:-1]), parts[-1])
                array_index[array] = array_index.get(array, -1) + 1
                yield array, number
            table = resolve(parts)
            yield table, number
        elif key := _KEY_LINE.match(line):
            yield (*table, *_split(key[1])), number


def _split(dotted_key: str) -> list[str]:
    return [part.strip("\"'") for part in re.findall(_PART, dotted_key)]
