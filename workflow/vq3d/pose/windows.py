"""The frame windows pose_sfm maps separately (pose.sfm_window_frames): pure arithmetic, shared
with the Slurm resource model (vq3d.resources), which must not import pycolmap at DAG time."""

from __future__ import annotations


def windows(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, stop) frame spans mapped separately: one span when `size` is 0 or covers the clip;
    otherwise spans of `size` frames, consecutive ones sharing `overlap`; the last window is
    stretched to the clip's end rather than followed by one with under half a window of new
    frames. Each span's mapping costs at most a window's, so a clip's mapping grows linearly with
    its frames (incremental mapping over one long clip grows faster, docs/benchmarks.md,
    scaling); the sub-models are aligned to the scan one by one (pose_register, pose_merge) like
    any SfM split."""
    if size <= 0 or n <= size:
        return [(0, n)]
    problem = invalid(size, overlap)
    if problem:
        raise ValueError(problem)
    step = size - overlap
    spans = []
    start = 0
    while start + size < n:
        spans.append((start, start + size))
        start += step
    if n - spans[-1][1] < size // 2:  # few new frames: stretch the last window instead
        spans[-1] = (spans[-1][0], n)
    else:
        spans.append((start, n))
    return spans


def invalid(size: int, overlap: int) -> str | None:
    """Why windows of `size` frames sharing `overlap` cannot advance, or None (also the config
    check, vq3d.config)."""
    if size > 0 and not 0 <= overlap < size:
        return (f"pose.sfm_window_overlap ({overlap}) must be smaller than pose.sfm_window_frames "
                f"({size})")
    return None


def clip_windows(n: int, pose: dict) -> list[tuple[int, int]]:
    """The windows of an `n`-frame clip under the pose config (its sfm_window_* keys)."""
    return windows(n, int(pose["sfm_window_frames"]), int(pose["sfm_window_overlap"]))
