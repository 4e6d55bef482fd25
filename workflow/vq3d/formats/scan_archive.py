"""`.vq3d_source` inside an unpacked scan folder (vq3d.scan_archive): {"archive": name, "bytes":
size} of the `3d_scans` archive it came from, so an unchanged archive is not unpacked again."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._common import dump_json

MARKER = ".vq3d_source"


def write_source_marker(folder: str | os.PathLike, archive: str, size: int) -> None:
    dump_json(Path(folder) / MARKER, {"archive": archive, "bytes": int(size)})


def read_source_marker(folder: str | os.PathLike) -> dict | None:
    """The marker's {"archive", "bytes"}, or None where it is missing or unreadable (the folder
    is then unpacked again: the marker is a cache key, never an input error)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
