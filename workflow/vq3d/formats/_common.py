"""Shared checks for the format readers: load JSON and pull typed fields, raising InputError that
names the file and the JSON path of the field (e.g. `videos[3].clips[0].clip_uid`)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..errors import InputError
from ..ids import UnsafeIdError, check_id, check_scan_id

_MISSING = object()


def load_json(path: str | os.PathLike, what: str):
    """Parse a JSON file; a missing file or bad JSON becomes one InputError naming `what` it is."""
    path = Path(path)
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise InputError(path, f"{what} does not exist") from None
    except IsADirectoryError:
        raise InputError(path, f"is a folder; expected the {what} (a JSON file)") from None
    except PermissionError:
        raise InputError(path, f"{what} cannot be read: permission denied") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"{what} is not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(path, f"{what} is nested too deeply to be read") from None


def load_object(path: str | os.PathLike, what: str) -> dict:
    """load_json of a file whose top level must be a JSON object."""
    data = load_json(path, what)
    if not isinstance(data, dict):
        raise InputError(path, f"{what} must be a JSON object")
    return data


def dump_json(path: str | os.PathLike, obj, *, indent: int | None = None) -> None:
    """Atomic JSON write; the one place every format writer goes through (`indent` for the
    files people read)."""
    write_json(path, obj, indent=indent)


def field(path, obj, key, types, where: str, *, optional: bool = False, default=None):
    """obj[key] checked against `types`; raise InputError naming `where.key` otherwise."""
    name = f"{where}.{key}" if where else str(key)
    if not isinstance(obj, dict):
        raise InputError(path, f"{where or 'top level'} must be an object, got {type(obj).__name__}")
    value = obj.get(key, _MISSING)
    if value is _MISSING or (value is None and optional):
        if optional:
            return default
        raise InputError(path, f"missing field {name}")
    if types is float:
        types = (int, float)
    if isinstance(value, bool) and types in (int, (int, float)):
        raise InputError(path, f"{name} must be a number, got a boolean")
    if not isinstance(value, types):
        want = getattr(types, "__name__", None) or "/".join(t.__name__ for t in types)
        raise InputError(path, f"{name} must be {want}, got {type(value).__name__}: {value!r:.60}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(path, f"{name} is not finite ({value})")
    return value


def number(path, value, where: str) -> float:
    """A finite JSON number (not a boolean) at `where`, as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(path, f"{where} must be a finite number, got {value!r:.60}")
    return float(value)


def as_list(path, obj, key, where, *, optional=False):
    return field(path, obj, key, list, where, optional=optional)


def as_dict(path, obj, key, where, *, optional=False):
    return field(path, obj, key, dict, where, optional=optional)


def uid(path, value, what: str, where: str) -> str:
    """A clip/video uid validated by vq3d.ids.check_id, reported as an InputError."""
    try:
        return check_id(value, what=what, source=where)
    except UnsafeIdError as exc:
        raise InputError(path, str(exc)) from None


def scan_uid(path, value, where: str) -> str:
    try:
        return check_scan_id(value, source=where)
    except UnsafeIdError as exc:
        raise InputError(path, str(exc)) from None


def vector(path, value, where: str, n: int = 3, *, shape=None) -> np.ndarray:
    """A finite float array of `shape` (default (n,)) from a JSON list."""
    shape = shape or (n,)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(path, f"{where} must be a numeric array of shape {shape}") from None
    if arr.shape != tuple(shape):
        raise InputError(path, f"{where} must have shape {tuple(shape)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(path, f"{where} holds non-finite values")
    return arr


def xyz(path, obj, where: str) -> np.ndarray:
    """{"x":..,"y":..,"z":..} → array(3)."""
    return np.array([field(path, obj, k, float, where) for k in "xyz"], dtype=float)


def to_list(arr) -> list | None:
    return None if arr is None else np.asarray(arr, dtype=float).tolist()
