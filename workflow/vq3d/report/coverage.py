"""Pose coverage over all clips: which share of each clip's frames got its pose from SfM, PnP,
gap interpolation or nothing, and where in the clip each kind lies.

Reads `R/pose/<clip>/summary.json` with vq3d.formats.pose_summary.read_coverage; the per-frame
strip is left out for a clip whose summary has no `source`."""

from __future__ import annotations

import logging
import numpy as np
from matplotlib.colors import ListedColormap

from ..formats.pose_summary import Coverage, read_coverage  # noqa: F401  (read_coverage: the report's reader)
from ._plot import SOURCE_COLOURS, SOURCE_LABELS, new_figure, save_png

log = logging.getLogger(__name__)


def plot_coverage(coverages: list[Coverage], out) -> None:
    """Left: share of frames by pose source per clip. Right: the source of every frame."""
    if not coverages:
        raise ValueError("no clips to plot")
    sources = list(dict.fromkeys(s for c in coverages for s in c.counts))
    colours = {s: SOURCE_COLOURS.get(s, "#8c564b") for s in sources}
    n = len(coverages)
    strips = any(c.per_frame is not None for c in coverages)
    fig = new_figure(12 if strips else 7.5, 2.0 + 0.42 * n)
    axes = fig.subplots(1, 2, width_ratios=(1, 1.6)) if strips else [fig.subplots()]
    ax = axes[0]
    y = np.arange(n)
    left = np.zeros(n)
    for s in sources:
        share = np.array([100.0 * c.counts.get(s, 0) / max(c.frames, 1) for c in coverages])
        ax.barh(y, share, left=left, color=colours[s], label=SOURCE_LABELS.get(s, s), height=0.7)
        left += share
    for i, c in enumerate(coverages):
        posed = c.frames - c.counts.get("none", 0)
        ax.text(101, i, f"{posed}/{c.frames}", va="center", fontsize=8)
    ax.set_yticks(y, [c.clip_uid for c in coverages], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 118)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("frames (%)   [posed/total]")
    ax.set_title("Pose coverage by source")
    fig.legend(loc="outside lower center", ncol=len(sources), fontsize=8, frameon=False)
    if strips:
        _plot_strips(axes[1], coverages, sources, colours)
    save_png(fig, out)


def _plot_strips(ax, coverages: list[Coverage], sources: list[str], colours: dict) -> None:
    index = {s: i for i, s in enumerate(sources)}
    longest = max(len(c.per_frame or []) for c in coverages)
    grid = np.full((len(coverages), max(longest, 1)), np.nan)
    for row, c in enumerate(coverages):
        for i, s in enumerate(c.per_frame or []):
            grid[row, i] = index[s]
    cmap = ListedColormap([colours[s] for s in sources]).with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(grid), aspect="auto", interpolation="nearest", cmap=cmap,
              vmin=-0.5, vmax=len(sources) - 0.5, extent=(-0.5, grid.shape[1] - 0.5,
                                                          len(coverages) - 0.5, -0.5))
    ax.hlines(np.arange(len(coverages) - 1) + 0.5, -0.5, grid.shape[1] - 0.5, color="white", lw=3)
    ax.set_yticks(np.arange(len(coverages)), [])
    ax.set_xlabel("clip frame (5 fps)")
    ax.set_title("Pose source of every frame")


def main(summaries, out) -> None:
    """Stage: one coverage chart over the pose summaries of all clips."""
    paths = [summaries] if isinstance(summaries, str) else list(summaries)
    coverages = [read_coverage(p) for p in paths]
    plot_coverage(coverages, out)
    log.info("pose coverage of %d clips -> %s", len(coverages), out)
