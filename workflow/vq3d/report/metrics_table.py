"""The val metrics as one self-contained HTML page for the report: the published metrics
(R/metrics.json) on top, then every query's row (R/per_query.csv), failures highlighted."""

from __future__ import annotations

import html
import logging

from ..atomic import write_text
from ..formats import metrics as _metrics

log = logging.getLogger(__name__)

# (key in metrics.json, column header, format)
SUMMARY = (("l2", "L2 (m)", ".3f"), ("angle", "angle (rad)", ".3f"),
           ("succ_star", "Succ* (%)", ".2f"), ("succ", "Succ (%)", ".2f"),
           ("qwp", "QwP (%)", ".2f"), ("n_queries", "queries", "d"))
# (column of per_query.csv, header, format or None for text)
PER_QUERY = (("clip_uid", "clip", None), ("annotation_index", "annotation", None),
             ("query_set", "query set", None), ("object_title", "object", None),
             ("has_3d", "3D", None), ("has_pose", "pose", None), ("l2", "L2 (m)", ".3f"),
             ("angle", "angle (rad)", ".3f"), ("dist_to_centre", "to centre (m)", ".3f"),
             ("threshold", "threshold (m)", ".3f"), ("success", "success", None))

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 14px;
       margin: 1em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f3f3f3; }
td.text, th.text { text-align: left; }
tr.fail td { background: #fdecea; }
tr.ok td.flag { color: #1a7f37; font-weight: bold; }
caption { text-align: left; font-weight: bold; padding-bottom: 6px; }
"""


def read_metrics(path) -> dict:
    return _metrics.read_metrics(path, required=[k for k, _, _ in SUMMARY])


def read_rows(path) -> list[dict]:
    return _metrics.read_per_query(path)


def _cell(value, spec) -> str:
    if value in (None, ""):
        return "—"
    if spec is None:
        return {"True": "yes", "False": "no"}.get(value, html.escape(str(value)))
    return format(int(value) if spec == "d" else float(value), spec)


def render(metrics: dict, rows: list[dict], split: str = "val") -> str:
    head = "".join(f"<th>{h}</th>" for _, h, _ in SUMMARY)
    vals = "".join(f"<td>{_cell(metrics[k], s)}</td>" for k, _, s in SUMMARY)
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>VQ3D metrics</title>"
           f"<style>{STYLE}</style></head><body>",
           f"<table><caption>VQ3D metrics, {html.escape(split)} split</caption>"
           f"<tr>{head}</tr><tr>{vals}</tr></table>",
           f"<table><caption>Per query ({len(rows)})</caption><tr>"
           + "".join(f"<th{' class=text' if s is None else ''}>{h}</th>" for _, h, s in PER_QUERY)
           + "</tr>"]
    for r in rows:
        ok = r["success"] == "True"
        cells = "".join(
            f"<td class='{'text' if s is None else 'num'}{' flag' if c == 'success' else ''}'>"
            f"{_cell(r[c], s)}</td>" for c, _, s in PER_QUERY)
        out.append(f"<tr class='{'ok' if ok else 'fail'}'>{cells}</tr>")
    out.append("</table></body></html>\n")
    return "\n".join(out)


def main(metrics, table, out, split="val") -> None:
    """Stage: metrics.json + per_query.csv -> one HTML page."""
    m, rows = read_metrics(metrics), read_rows(table)
    write_text(out, render(m, rows, split))
    log.info("metrics table of %d queries -> %s", len(rows), out)
