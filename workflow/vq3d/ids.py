"""Validation of identifiers that come from annotation files and become paths or shell words."""

import re

from .errors import VQ3DError

# Ego4D uids are lower-case UUIDs; the synthetic benchmark uses short slugs. Both match this.
SAFE_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_SAFE_ID_RE = re.compile(rf"^{SAFE_ID}$")

# Matterport scan uids in Ego4D contain spaces ("unict_Scooter mechanic_31"); they name folders
# but never reach a shell unquoted, so a space is allowed here and nothing else new.
_SAFE_SCAN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,127}$")


class UnsafeIdError(VQ3DError, ValueError):
    """An identifier read from an input file cannot be used as a path or a shell argument."""

    kind = "bad input"


def check_id(value, *, what: str, source: str = "") -> str:
    """Return `value` if it is a safe clip/video uid, else raise UnsafeIdError naming where it came from."""
    where = f" in {source}" if source else ""
    if not isinstance(value, str) or not _SAFE_ID_RE.match(value) or ".." in value:
        raise UnsafeIdError(
            f"unsafe {what} {value!r}{where}: ids become file names and shell arguments, so they "
            f"must match {SAFE_ID} (letters, digits, '_', '.', '-'; no '/', spaces or '..')"
        )
    return value


def check_scan_id(value, *, source: str = "") -> str:
    """Return `value` if it is a safe scan uid (spaces allowed), else raise UnsafeIdError."""
    where = f" in {source}" if source else ""
    if not isinstance(value, str) or not _SAFE_SCAN_RE.match(value) or ".." in value:
        raise UnsafeIdError(
            f"unsafe scan_uid {value!r}{where}: it must match [A-Za-z0-9][A-Za-z0-9 _.-]*"
        )
    return value
