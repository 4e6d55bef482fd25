"""Annotation scan names -> scan folders.

The VQ3D annotation files name a scan by its Matterport space name (`scan_uid`:
`"unict_Scooter mechanic_31"`, with a space); the scan folders (Ego4D's `3d/scans/<folder>`,
EgoLoc's `data/geo_register/<folder>`) are `unict_3dscan_001` ... Ego4D's
`VQ3D/camera_pose_estimation/run_all_data.py` and EgoLoc's `colmap_utils/*.py` hard-code the
table; here it is data: a JSON object `{scan name: folder}` (`ego4d.scan_names` in the config;
null = Ego4D's table, EGO4D_SCAN_NAMES). Names follow the scan-uid rule (spaces allowed), folders
the id rule (no spaces: they become paths), and no two names share a folder."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..ids import UnsafeIdError, check_id, check_scan_id
from ._common import dump_json, load_json

# Ego4D episodic-memory VQ3D/camera_pose_estimation/run_all_data.py (scan_name_to_uid), the same
# in EgoLoc colmap_utils/register_colmap_to_matterport.py: the four UNICT scans of VQ3D.
EGO4D_SCAN_NAMES = {
    "unict_Scooter mechanic_31": "unict_3dscan_001",
    "unict_Baker_32": "unict_3dscan_002",
    "unict_Carpenter_33": "unict_3dscan_003",
    "unict_Bike mechanic_34": "unict_3dscan_004",
}
BUILTIN = "Ego4D's scan name table (run_all_data.py)"


def check_scan_names(table: dict, source: str) -> dict[str, str]:
    """The table validated: str -> str, safe names and folders, one name per folder."""
    if not isinstance(table, dict) or not table:
        raise InputError(source, "scan name mapping must be a non-empty JSON object {scan name: folder}")
    by_folder: dict[str, str] = {}
    out = {}
    for name, folder in table.items():
        try:
            check_scan_id(name, source=source)
            if not isinstance(folder, str):
                raise UnsafeIdError(f"folder of scan {name!r} in {source} must be a string, got "
                                    f"{type(folder).__name__}")
            check_id(folder, what=f"scan folder of {name!r}", source=source)
        except UnsafeIdError as exc:
            raise InputError(source, str(exc)) from None
        if folder in by_folder:
            raise InputError(source, f"scans {by_folder[folder]!r} and {name!r} both map to folder "
                                     f"{folder!r}: each scan needs its own folder")
        by_folder[folder] = name
        out[name] = folder
    return out


def read_scan_names(path: str | os.PathLike | None) -> dict[str, str]:
    """The mapping in `path`, or Ego4D's table when `path` is None."""
    if path is None:
        return dict(EGO4D_SCAN_NAMES)
    path = Path(path)
    return check_scan_names(load_json(path, "scan name mapping"), str(path))


def write_scan_names(path: str | os.PathLike, table: dict[str, str]) -> None:
    dump_json(path, check_scan_names(table, str(path)))


def scan_folder(table: dict[str, str], name: str, *, mapping_source: str, where: str) -> str:
    """The folder of scan `name`, or an InputError naming where the name came from and what is known."""
    try:
        return table[name]
    except KeyError:
        known = ", ".join(repr(n) for n in sorted(table)) or "none"
        raise InputError(where, f"scan {name!r} has no folder in {mapping_source} (it maps {known}); "
                                "add it to the file named by ego4d.scan_names") from None
