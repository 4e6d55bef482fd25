"""Slurm-side scaling figures for docs/benchmarks.md (## slurm).

1. Dry-run DAG construction for N clips of the real workflow (`snakemake -n` on an
   annotation-only ego4d-kind dataset: a synthetic VQ3D annotation file with N clips).
2. Slurm submissions per clip with the per-clip groups on and off, counted from the same
   dry-run's job list (each group -- `group:` in rules/*.smk, one clip per group job as in
   profiles/slurm -- is one sbatch per clip; local rules none).

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
RULE = re.compile(r"^\s*rule (\w+):(.*?)(?=^\s*rule \w+:|\Z)", re.M | re.S)


def rule_bodies() -> dict[str, str]:
    return {name: body for smk in (REPO / "rules").glob("*.smk")
            for name, body in RULE.findall(smk.read_text())}


def local_rules() -> set[str]:
    """Rules run by the controller itself (`localrule: True`, and `all`): never an sbatch."""
    return {"all"} | {name for name, body in rule_bodies().items()
                      if re.search(r"^\s*localrule:\s*True", body, re.M)}


def groups() -> dict[str, str]:
    """rule -> its `group:` (clip_gpu, clip_cpu)."""
    out = {}
    for name, body in rule_bodies().items():
        match = re.search(r"^\s*group:\s*\n?\s*\"(\w+)\"", body, re.M)
        if match:
            out[name] = match.group(1)
    return out


def write_dataset(root: Path, clips: int, clips_per_video: int = 4) -> Path:
    """Annotation and query files of `clips` clips (one query set each, enough to build the DAG)."""
    videos, query_videos = [], []
    for v in range(0, clips, clips_per_video):
        uids = [f"clip{c:05d}" for c in range(v, min(v + clips_per_video, clips))]
        video_uid = f"video{v // clips_per_video:05d}"
        videos.append({
            "video_uid": video_uid,
            "scan_uid": f"unict_3dscan_{(v // clips_per_video) % 4 + 1:03d}",
            "clips": [{"clip_uid": u, "annotations": [{"query_sets": {"1": {}}}]} for u in uids],
        })
        timing = dict(video_start_sec=0.0, video_end_sec=8.0, clip_fps=5.0, clip_start_sec=0.0,
                      clip_end_sec=8.0, video_start_frame=0, video_end_frame=240)
        query_videos.append({"video_uid": video_uid, "clips": [
            {"clip_uid": u, **timing, "annotations": [{"query_sets": {"1": {"is_valid": False}}}]}
            for u in uids]})
    (root / "vq3d_val.json").write_text(json.dumps({"videos": videos}))
    (root / "queries.json").write_text(json.dumps({"videos": query_videos}))
    for name in ("mapping.json", "intrinsics.json"):
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
        members: dict[str, list[int]] = {}
        for rule, group in groups().items():
            if rule in remote:
                members.setdefault(group, []).append(remote[rule])
        for counts_of_group in members.values():
            total -= sum(counts_of_group) - max(counts_of_group)
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
    print(f"groups: {groups()}")
    for grouped in (True, False):
        n = submissions(counts, grouped)
        print(f"sbatch submissions, grouping {'on' if grouped else 'off'}: {n} "
              f"({n / args.clips:.2f} per clip)")


if __name__ == "__main__":
    main()
