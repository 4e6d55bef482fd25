"""Unpack one scan archive of Ego4D's `3d_scans` dataset into `<scans_dir>/<scan folder>/`.

The archive either holds one top-level folder (its name is the scan folder) or the scan's files
directly (the folder is then the archive's name without its extension). Members are unpacked with
tarfile's "data" filter (no absolute paths, no `..`, no links out, no devices), into a temporary
sibling that is renamed into place: a folder under scans_dir is always a complete scan. A
`.vq3d_source` file inside records the archive's name and size, so an unchanged archive is not
unpacked again and a re-downloaded, changed one is."""

from __future__ import annotations

import logging
import shutil
import tarfile
import tempfile
from pathlib import Path

from .errors import InputError
from .formats.scan_archive import read_source_marker, write_source_marker
from .ids import UnsafeIdError, check_id

log = logging.getLogger(__name__)


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".tar.gz", ".tgz", ".tar", ".zip"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def _top_folder(names: list[str]) -> str | None:
    tops = {n.lstrip("./").split("/", 1)[0] for n in names if n.lstrip("./")}
    if len(tops) == 1:
        top = next(iter(tops))
        if any(n.lstrip("./").startswith(top + "/") for n in names):
            return top
    return None


def extract_scan(archive, scans_dir) -> Path:
    """Unpack `archive` into scans_dir/<folder>/; returns that folder."""
    archive, scans_dir = Path(archive), Path(scans_dir)
    stamp = {"archive": archive.name, "bytes": archive.stat().st_size}
    try:
        tar = tarfile.open(archive)
    except (tarfile.TarError, OSError) as exc:
        raise InputError(archive, f"scan archive cannot be read ({exc}); delete it and download again") from None
    with tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        top = _top_folder(names)
        folder = top or _stem(archive)
        try:
            check_id(folder, what="scan folder", source=str(archive))
        except UnsafeIdError as exc:
            raise InputError(archive, str(exc)) from None
        dest = scans_dir / folder
        if read_source_marker(dest) == stamp:
            log.info("%s: already unpacked in %s", archive.name, dest)
            return dest
        scans_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.", dir=scans_dir))
        try:
            try:
                tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise InputError(archive, f"scan archive cannot be unpacked ({exc})") from None
            src = tmp / top if top else tmp
            write_source_marker(src, archive.name, stamp["bytes"])
            old = None
            if dest.exists():
                old = scans_dir / f".{folder}.old"
                shutil.rmtree(old, ignore_errors=True)
                dest.rename(old)
            src.rename(dest)
            if old:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: %d files unpacked into %s", archive.name, sum(m.isfile() for m in members), dest)
    return dest


def add_geo_register(scan_folder, geo_register) -> Path | None:
    """Copy EgoLoc's renders of this scan (geo_register/<folder>/: geo_N.jpg + geo.txt) into
    scan_folder/geo_register/ (atomically); None when EgoLoc has none for it."""
    scan_folder, src = Path(scan_folder), Path(geo_register) / Path(scan_folder).name
    if not (src / "geo.txt").is_file():
        log.warning("%s: no EgoLoc geo renders in %s", scan_folder.name, src)
        return None
    dest = scan_folder / "geo_register"
    tmp = scan_folder / ".geo_register.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
