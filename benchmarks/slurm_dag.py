"""Slurm-side scaling figures for docs/benchmarks.md (## slurm).

1. Dry-run DAG construction for N clips of the real workflow (`snakemake -n` on an
   annotation-only ego4d-kind dataset: a synthetic VQ3D annotation file with N clips).
2. Slurm submissions per clip with the per-clip GPU group on and off, counted from the same
   dry-run's job list (groups of frames/detect/pose_sfm become one sbatch each; local rules none).

    python benchmarks/slurm_dag.py [--clips 1000]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GROUPED = ("frames", "detect", "pose_sfm")  # group "clip_gpu" in rules/*.smk


def local_rules() -> set[str]:
    """Rules run by the controller itself (`localrule: True`, and `all`): never an sbatch."""
    local = {"all"}
    for smk in (REPO / "rules").glob("*.smk"):
        for name, body in re.findall(r"^\s*rule (\w+):(.*?)(?=^\s*rule \w+:|\Z)",
                                     smk.read_text(), re.M | re.S):
            if re.search(r"^\s*localrule:\s*True", body, re.M):
                local.add(name)
    return local


def write_dataset(root: Path, clips: int, clips_per_video: int = 4) -> Path:
    videos = []
    for v in range(0, clips, clips_per_video):
        videos.append({
            "video_uid": f"video{v // clips_per_video:05d}",
            "scan_uid": f"unict_3dscan_{(v // clips_per_video) % 4 + 1:03d}",
            "clips": [{"clip_uid": f"clip{c:05d}", "annotations": []}
                      for c in range(v, min(v + clips_per_video, clips))],
        })
    (root / "vq3d_val.json").write_text(json.dumps({"videos": videos}))
    for name in ("queries.json", "mapping.json", "intrinsics.json"):
        (root / name).write_text("{}")
    (root / "config.yaml").write_text(
        "dataset: {kind: ego4d, split: val}\n"
        f"ego4d: {{annotations: {root}/vq3d_val.json, queries: {root}/queries.json, "
        f"mapping: {root}/mapping.json, intrinsics: {root}/intrinsics.json}}\n")
    return root


def dry_run(root: Path) -> tuple[float, dict[str, int], str]:
    cmd = ["snakemake", "-n", "-s", str(REPO / "Snakefile"), "-d", str(root),
           "--configfile", str(root / "config.yaml"), "--quiet", "rules"]
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    counts = {m.group(1): int(m.group(2))
              for m in re.finditer(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, re.M)}
    counts.pop("total", None)
    return elapsed, counts, " ".join(cmd)


def submissions(counts: dict[str, int], grouped: bool) -> int:
    local = local_rules()
    remote = {r: n for r, n in counts.items() if r not in local}
    total = sum(remote.values())
    if grouped:
        # one sbatch per clip for the whole group instead of one per member
        total -= sum(remote.get(r, 0) for r in GROUPED) - remote.get("frames", 0)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(Path(tmp), args.clips)
        elapsed, counts, cmd = dry_run(root)
    print(f"dry-run DAG, {args.clips} clips: {elapsed:.1f} s  ({cmd})")
    print(f"jobs per rule: {counts}")
    print(f"local rules (no sbatch): {sorted(local_rules())}")
    for grouped in (True, False):
        n = submissions(counts, grouped)
        print(f"sbatch submissions, grouping {'on' if grouped else 'off'}: {n} "
              f"({n / args.clips:.2f} per clip)")


if __name__ == "__main__":
    main()
