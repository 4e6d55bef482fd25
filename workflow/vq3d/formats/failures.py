"""`final/failed_clips.tsv` (vq3d finalize): the clips of a split without a prediction and why.

Tab-separated with a header `clip_uid stage reason log`: the first stage whose rule log holds an
error line, that line's reason (one line), and the log file ('' where none was found)."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

from ..atomic import write_text
from ..errors import InputError

FIELDS = ["clip_uid", "stage", "reason", "log"]


@dataclass(frozen=True)
class FailedClip:
    clip_uid: str
    stage: str
    reason: str
    log: str


def write_failed_clips(path: str | os.PathLike, failed: list[FailedClip]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(FIELDS)
    for f in failed:
        w.writerow([f.clip_uid, f.stage, " ".join(f.reason.split()), f.log])
    write_text(path, buf.getvalue())


def read_failed_clips(path: str | os.PathLike) -> list[FailedClip]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    if not rows or rows[0] != FIELDS:
        raise InputError(path, f"failed-clip list must start with the header {' '.join(FIELDS)}")
    out = []
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(FIELDS):
            raise InputError(path, f"line {n}: expected {len(FIELDS)} tab-separated fields, got {len(row)}")
        out.append(FailedClip(*row))
    return out
