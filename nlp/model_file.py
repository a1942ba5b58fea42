"""A model file that loading can never turn into running code: numpy arrays and a JSON header.

No pickle, no joblib: the file is a zip of ``.npy`` arrays (``numpy.savez``)
read with ``allow_pickle=False``, so an object array, or a pickle renamed to
``model.npz``, is refused by numpy before anything is unpickled. The header is
JSON stored as a byte array in the same zip, and carries a SHA-256 of every
other array, so a damaged or edited file is refused rather than half-used.

This module knows the container only; ``nlp.trained`` knows what the arrays
mean and checks their shapes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HEADER = "header"
_CHECKSUM = "sha256"
# Far above any real model (ours are a few tens of MB), far below what would hurt.
MAX_FILE_BYTES = 1 << 30


class ModelFileError(Exception):
    """The model file cannot be used; ``str()`` says why, for the operator."""


def write_arrays(
    path: Path, header: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]
) -> None:
    """Write ``arrays`` and ``header`` (plus their checksum) atomically to ``path``."""
    if HEADER in arrays:
        raise ValueError(f"array name {HEADER!r} is reserved")
    full = {**header, _CHECKSUM: _checksum(arrays)}
    encoded = np.frombuffer(json.dumps(full, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed over it: a crash never leaves half a model.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        payload: dict[str, Any] = {HEADER: encoded, **arrays}
        with temporary.open("xb") as out:
            np.savez_compressed(out, allow_pickle=False, **payload)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_arrays(path: Path) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The header and arrays of a model file, checksum verified; ``ModelFileError`` if not."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise ModelFileError("file not found") from exc
    if size > MAX_FILE_BYTES:
        raise ModelFileError(f"file too large for a model ({size} bytes)")
    arrays = _read_npz(path)
    header_bytes = arrays.pop(HEADER, None)
    if header_bytes is None or header_bytes.dtype != np.uint8 or header_bytes.ndim != 1:
        raise ModelFileError("not a model file: no header")
    try:
        header = json.loads(header_bytes.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"damaged model header: {exc}") from exc
    if not isinstance(header, dict):
        raise ModelFileError("damaged model header: not a JSON object")
    if header.pop(_CHECKSUM, None) != _checksum(arrays):
        raise ModelFileError("checksum mismatch: the file was damaged or edited after training")
    return header, arrays


def _read_npz(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every array of the archive at ``path``, refusing pickled data."""
    try:
        # Our own handle: numpy leaves its own open when the archive is damaged.
        with path.open("rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                return {}
            with loaded as npz:
                return {name: npz[name] for name in npz.files}
    except ValueError as exc:
        # numpy's refusal of pickled data (a pickle file or an object array) lands here.
        raise ModelFileError(f"not a model file: {exc}") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as exc:
        raise ModelFileError(f"damaged or truncated model file ({exc})") from exc


def _checksum(arrays: Mapping[str, npt.NDArray[Any]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
