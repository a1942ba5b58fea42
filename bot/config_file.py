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
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_KEY_LINE = re.compile(rf"^\s*({_DOTTED})\s*=")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = " (at end of document)"
# Fields whose values name another entry; cross-reference errors are about them.
_REFERENCE_FIELDS = {"supervision_department", "department", "co_departments", "parent"}


class ConfigFileError(Exception):
    """The config file cannot be used; ``str()`` is the message for the operator."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file, self.line, self.problem = file, line, problem
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {problem}")


def load_desk_config(path: Path | None = None) -> DeskConfig:
    """Read, parse and validate the desk config; ``None`` means the packaged default."""
    resource: Traversable = files("bot") / "default_desk.toml" if path is None else path
    name = str(resource)
    try:
        data = resource.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigFileError(name, None, "file not found") from exc
    except OSError as exc:
        raise ConfigFileError(name, None, f"cannot read the file: {exc.strerror or exc}") from exc
    return parse_desk_config(data, name)


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
        line, problem = _toml_error_position(str(exc), text)
        raise ConfigFileError(name, line, f"TOML syntax error: {problem}") from exc
    try:
        return DeskConfig.model_validate(raw)
    except ValidationError as exc:
        line, problem = _describe_validation_error(exc, raw, text)
        raise ConfigFileError(name, line, problem) from None


def _toml_error_position(message: str, text: str) -> tuple[int, str]:
    """Line and message of a tomllib error, with the position moved out of the text."""
    found = _TOML_POSITION.search(message)
    if found is not None:
        return int(found[1]), f"{message[: found.start()]} (column {found[2]})"
    # "At end of document": an unclosed string or a clash only seen at the end;
    # the last written line is the nearest honest answer.
    return max(len(text.rstrip().splitlines()), 1), message.removesuffix(_TOML_AT_END)


def _describe_validation_error(
    exc: ValidationError, raw: dict[str, Any], text: str
) -> tuple[int, str]:
    """The line and message of the first problem in the file (by line, not by field order)."""
    errors = exc.errors(include_url=False)
    placed = sorted(((_error_line(e, raw, text), i) for i, e in enumerate(errors)))
    line, first = placed[0]
    problem = _error_message(errors[first])
    if len(errors) > 1:
        more = len(errors) - 1
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    return line, problem


def _error_line(error: ErrorDetails, raw: dict[str, Any], text: str) -> int:
    loc = tuple(error["loc"])
    if loc:
        return locate(text, loc)
    # A model_validator error has no loc: find the value the message is about.
    path = _reference_path(error["msg"].removeprefix("Value error, "), raw)
    return locate(text, path) if path else 1


def _error_message(error: ErrorDetails) -> str:
    loc, message = tuple(error["loc"]), error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    where = _dotted(loc)
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (misspelt, or not a setting of this section)"
    if error["type"] == "missing":
        if len(loc) == 1:
            field = DeskConfig.model_fields.get(str(loc[0]))
            is_list = field is not None and get_origin(field.annotation) is list
            return f"[[{where}]] tables are missing" if is_list else f"[{where}] section is missing"
        return f"{where}: required key is missing"
    value = error.get("input")
    if isinstance(value, str | int | float) and len(repr(value)) <= 60:
        message += f" (got {value!r})"
    return f"{where}: {message}"


def _dotted(loc: Loc) -> str:
    """``("categories", 4, "keywords")`` -> ``categories[4].keywords``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _reference_path(message: str, raw: dict[str, Any]) -> Loc | None:
    """Where the value a cross-reference error names is written, from the error's wording."""
    twice = re.match(r"(department|category) code defined twice: ([^,]+)", message)
    if twice:
        table = "departments" if twice[1] == "department" else "categories"
        items = raw.get(table, [])
        hits = [i for i, item in enumerate(items) if item.get("code") == twice[2]]
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
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path, node


def locate(text: str, loc: Loc) -> int:
    """The line (1-based) where the key at ``loc`` is written, or its nearest table, or 1."""
    best_line, best_depth = 1, 0
    for path, line in _key_positions(text):
        depth = len(path)
        if depth > best_depth and loc[:depth] == path:
            best_line, best_depth = line, depth
    if best_depth < len(loc) and isinstance(loc[best_depth], str):
        # The key may sit in an inline table on or after the line found.
        key = re.escape(str(loc[best_depth]))
        inline = re.compile(rf"""(?:^|[\s{{,.])(?:"{key}"|'{key}'|{key})\s*=""")
        lines = text.splitlines()
        for number in range(best_line, len(lines) + 1):
            if number > best_line and _is_header(lines[number - 1]):
                break
            if inline.search(lines[number - 1]):
                return number
    return best_line


def _key_positions(text: str) -> Iterator[tuple[Loc, int]]:
    """Every table header and ``key =`` line with the full path it defines."""
    table: Loc = ()
    array_index: dict[Loc, int] = {}  # latest index of each [[array]] seen

    def resolve(parts: list[str]) -> Loc:
        path: Loc = ()
        for part in parts:
            path = (*path, part)
            if path in array_index:
                path = (*path, array_index[path])
        return path

    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        # Lines inside a multi-line string can look like keys; skip them.
        was_in_multiline = in_multiline
        if (line.count('"""') + line.count("'''")) % 2:
            in_multiline = not in_multiline
        if was_in_multiline:
            continue
        if found := _ARRAY_HEADER.match(line):
            parts = _split(found[1])
            array = (*resolve(parts[:-1]), parts[-1])
            array_index[array] = array_index.get(array, -1) + 1
            table = (*array, array_index[array])
            yield array, number
        elif found := _TABLE_HEADER.match(line):
            table = resolve(_split(found[1]))
        elif found := _KEY_LINE.match(line):
            yield (*table, *_split(found[1])), number
            continue
        else:
            continue
        yield table, number


def _is_header(line: str) -> bool:
    return bool(_ARRAY_HEADER.match(line) or _TABLE_HEADER.match(line))


def _split(dotted_key: str) -> list[str]:
    return [part.strip("\"'") for part in re.findall(_PART, dotted_key)]
