"""Shared figure plumbing: an Agg figure without pyplot's global state, atomic PNG writes, and
the colours every figure uses for the same thing."""

from __future__ import annotations

import os

from matplotlib.figure import Figure

from ..atomic import atomic_path
from ..formats.pose_summary import SOURCES  # noqa: F401  (the summary's source names)

SOURCE_COLOURS = {"sfm": "#1f77b4", "pnp": "#ff7f0e", "interpolated": "#e3c800", "none": "#c7c7c7"}
SOURCE_LABELS = {"sfm": "SfM", "pnp": "PnP", "interpolated": "interpolated", "none": "no pose"}
# One colour per query of a clip (cycled): prediction, ground truth and peaks share it.
QUERY_COLOURS = ("#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                 "#7f7f7f")
DPI = 110


def new_figure(width: float, height: float) -> Figure:
    """A figure drawn with Agg; safe in threads and in processes without a display."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_png(fig: Figure, path: str | os.PathLike) -> None:
    """Write `fig` as PNG atomically (a killed job leaves no half-written plot)."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)


def query_colour(i: int) -> str:
    return QUERY_COLOURS[i % len(QUERY_COLOURS)]
