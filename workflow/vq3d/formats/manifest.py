"""Ego4D's release manifests (`s3://ego4d-consortium-sharing/public/<version>/<dataset>/manifest.csv`,
which the ego4d CLI downloads beside a dataset's files): a CSV with a header row, one row a file,
keyed by `video_uid` (video datasets: full_scale, clips) or `file_uid` (annotations, 3d, 3d_scans),
with its `s3_path` (real manifests also `canonical_s3_location`) and other columns
(`benchmarks`, `type`). vq3d.download reads them to find a
uid's file; the replica (vq3d.synth.replica) writes them."""

from __future__ import annotations

import csv
import os

from ..atomic import atomic_path
from ..errors import InputError

VIDEO_HEADER = ["video_uid", "s3_path", "benchmarks"]
FILE_HEADER = ["file_uid", "s3_path", "type"]


def read_manifest(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """{uid (video_uid or file_uid): the row as {column: value}}."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"Ego4D manifest cannot be read ({exc})") from None
    return {(r.get("video_uid") or r.get("file_uid") or ""): r for r in rows}


def write_manifest(path: str | os.PathLike, header: list[str], rows: list[list[str]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
