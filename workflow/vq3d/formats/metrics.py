"""The evaluate stage's outputs: `R/metrics.json` (the split's metrics) and `R/per_query.csv`
(one row per annotated query). Written by vq3d.evaluate, read by the report's metrics table."""

from __future__ import annotations

import csv
import math

from ..atomic import atomic_path, write_json
from ..errors import InputError
from ._common import load_json

# metrics.json: every key, a number or null (n_queries an integer)
METRIC_KEYS = ("l2", "angle", "succ", "succ_star", "qwp", "n_queries", "angle_1", "angle_2")
# per_query.csv columns, in order; the numeric ones are empty where undefined
PER_QUERY_FIELDS = ("clip_uid", "annotation_index", "query_set", "object_title", "has_3d",
                    "has_pose", "l2", "angle", "dist_to_centre", "threshold", "success",
                    "angle_1", "angle_2")
PER_QUERY_NUMBERS = ("l2", "angle", "dist_to_centre", "threshold", "angle_1", "angle_2")
# Columns a reader needs (tables written before angle_1/angle_2 existed still read).
PER_QUERY_REQUIRED = PER_QUERY_FIELDS[:11]


def write_metrics(path, metrics: dict) -> None:
    write_json(path, {k: metrics[k] for k in METRIC_KEYS}, indent=2)


def _number(path, data, key):
    v = data.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                          or not math.isfinite(v)):
        raise InputError(path, f"{key} must be a number or null, got {v!r}")
    return v


def read_metrics(path, required=METRIC_KEYS[:6]) -> dict:
    """{key: number or None} of metrics.json; a key of `required` missing is an error."""
    data = load_json(path, "metrics file")
    if not isinstance(data, dict):
        raise InputError(path, "metrics must be a JSON object")
    for key in required:
        if key not in data:
            raise InputError(path, f"missing field {key}")
    return {key: _number(path, data, key) for key in METRIC_KEYS if key in data}


def write_per_query(path, rows: list[dict]) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=PER_QUERY_FIELDS)
            w.writeheader()
            for r in rows:
                w.writerow({k: "" if r[k] is None else r[k] for k in PER_QUERY_FIELDS})


def read_per_query(path) -> list[dict]:
    """The rows of per_query.csv as {column: text}; numeric columns checked to parse."""
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in PER_QUERY_REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(path, f"missing column(s) {', '.join(missing)}")
            rows = list(reader)
    except FileNotFoundError:
        raise InputError(path, "per-query table does not exist") from None
    for i, r in enumerate(rows, start=2):
        for c in PER_QUERY_NUMBERS:
            if r.get(c) not in (None, ""):
                try:
                    float(r[c])
                except ValueError:
                    raise InputError(path, f"line {i}, column {c}: not a number: {r[c]!r}") from None
    return rows
