"""The real-data path end to end on the Ego4D-shaped replica: per-stage times and metrics.

    python benchmarks/replica_e2e.py --work /tmp/replica-run [--scale 4] [--clip-seconds 12] [--cores 2]

Builds the replica (`vq3d synth --layout ego4d`), serves it from a local S3 (`vq3d serve-replica`),
downloads annotations and the 3d scans with the real ego4d CLI (`vq3d download`), then runs
`snakemake` with `dataset.kind: ego4d` on val and on test (the clips are downloaded by the
workflow's own download rule). Prints per-rule wall times (from the rules' benchmark: files) and
the val metrics; `--json` writes them. The replica test (tests/test_replica_e2e.py) runs `run()`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _env(env: dict[str, str]):
    from vq3d.formats.aws_env import CLEARED as _CLEARED

    saved = dict(os.environ)
    for k in _CLEARED:
        os.environ.pop(k, None)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def configs(work: Path, rep: Path, extra: dict | None = None) -> dict[str, Path]:
    """The val and test configuration files of a kind: ego4d run on the downloaded replica."""
    data = work / "data"
    ann = data / "ego4d" / "v2" / "annotations"
    epi = rep / "episodic-memory" / "VQ3D" / "data"
    out = {}
    for split in ("val", "test"):
        conf = {
            "data_dir": str(data), "results_dir": str(work / f"results_{split}"),
            "dataset": {"kind": "ego4d", "split": split},
            "ego4d": {
                "annotations": str(ann / "vq3d_val.json") if split == "val"
                else str(epi / "vq3d_test_unannotated_template.json"),
                "queries": str(ann / ("vq_val.json" if split == "val" else "vq_test_unannotated.json")),
                "mapping": str(epi / f"mapping_vq2d_to_vq3d_queries_annotations_{split}.json"),
                "intrinsics": str(epi / "scan_to_intrinsics.json"),
                "scans_dir": str(data / "ego4d" / "scans"),
                "videos_dir": str(data / "ego4d" / "clips"),
                "source": "clips",
            },
        }
        for key, value in (extra or {}).items():
            conf.setdefault(key, {}).update(value) if isinstance(value, dict) else conf.update({key: value})
        path = work / f"config_{split}.yaml"
        path.write_text(yaml.safe_dump(conf))
        out[split] = path
    return out


def snakemake(config: Path, work: Path, cores: int, *args, timeout: int = 3000) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
           "--cores", str(cores), "--configfile", str(config), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def stage_times(results: Path) -> dict[str, dict]:
    """{rule: {"jobs", "total_s", "max_s"}} from the rules' benchmark TSVs."""
    out: dict[str, dict] = {}
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = tsv.parent.name if tsv.parent != results / "benchmarks" else tsv.stem
        with open(tsv) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if not rows:
            continue
        s = float(rows[-1]["s"])
        e = out.setdefault(rule, {"jobs": 0, "total_s": 0.0, "max_s": 0.0})
        e["jobs"] += 1
        e["total_s"] += s
        e["max_s"] = max(e["max_s"], s)
    return out


def prepare(work: Path, conf: dict | None = None):
    """Replica written and downloaded; returns (replica dir, summary)."""
    from vq3d.synth.replica import write_replica

    rep = work / "replica"
    t0 = time.monotonic()
    summary = write_replica(rep, conf or {})
    summary["generate_s"] = time.monotonic() - t0
    return rep, summary


def download_inputs(work: Path, rep: Path) -> dict:
    """annotations + 3d scans through the real ego4d CLI (the S3 env must be set)."""
    from vq3d import download

    t0 = time.monotonic()
    data = work / "data" / "ego4d"
    download.download_files(data, "annotations")
    download.download_files(data, "3d")
    download.download_scans(data, data / "scans", geo_register=rep / "EgoLoc" / "data" / "geo_register")
    return {"download_s": time.monotonic() - t0}


def corrupt_clip(rep: Path, clip_uid: str, out: Path) -> Path:
    """A damaged copy of one canonical clip (its first 4 KiB, then bytes that are no H.264), to
    replace the S3 object with: the download succeeds, the clip's frames job fails."""
    head = (rep / "ego4d" / "v2" / "clips" / f"{clip_uid}.mp4").read_bytes()[:4096]
    out.write_bytes(head + bytes(range(256)) * 64)
    return out


def finalize(config: Path) -> subprocess.CompletedProcess:
    """The documented follow-up of a --keep-going run with failed clips."""
    return subprocess.run([sys.executable, "-m", "vq3d", "finalize", "--configfile", str(config)],
                          capture_output=True, text=True, timeout=600)


def run(work, conf: dict | None = None, cores: int = 2, extra: dict | None = None,
        splits=("val", "test"), keep_going: bool = False, corrupt: bool = False) -> dict:
    """Replica, S3, downloads, then snakemake per split; with `corrupt`, afterwards one clip's
    video is damaged on the S3 side and val runs again into results_corrupt (--keep-going, fresh
    downloads), followed by `vq3d finalize`."""
    from vq3d.synth.serve import serving

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    rep, summary = prepare(work, conf)
    report = {"replica": {k: summary[k] for k in ("conf", "resolutions", "generate_s")},
              "clips": sorted(summary["clips"]), "runs": {}}
    with serving(rep, work / "aws") as env, _env(env):
        report.update(download_inputs(work, rep))
        cfgs = configs(work, rep, extra)
        for split in splits:
            t0 = time.monotonic()
            args = ["--keep-going"] if keep_going else []
            proc = snakemake(cfgs[split], work, cores, *args)
            results = work / f"results_{split}"
            entry = {"returncode": proc.returncode, "wall_s": time.monotonic() - t0,
                     "stages": stage_times(results), "log_tail": (proc.stdout + proc.stderr)[-6000:]}
            metrics = results / "metrics.json"
            if metrics.is_file():
                entry["metrics"] = json.loads(metrics.read_text())
            report["runs"][split] = entry
        if corrupt:
            bad = report["clips"][0]
            damaged = corrupt_clip(rep, bad, work / f"{bad}.damaged.mp4")
            import boto3.session

            from vq3d.synth.replica import CLI_VERSION, VIDEO_BUCKET

            boto3.session.Session(profile_name="default").client("s3").upload_file(
                str(damaged), VIDEO_BUCKET,
                f"public/{CLI_VERSION}/clips/{bad}.mp4")
            cfg = yaml.safe_load(cfgs["val"].read_text())
            cfg["results_dir"] = str(work / "results_corrupt")
            cfg["ego4d"]["videos_dir"] = str(work / "data" / "ego4d" / "clips_corrupt")
            path = work / "config_corrupt.yaml"
            path.write_text(yaml.safe_dump(cfg))
            t0 = time.monotonic()
            proc = snakemake(path, work, cores, "--keep-going")
            fin = finalize(path)
            report["corrupt"] = {"clip": bad, "returncode": proc.returncode, "wall_s": time.monotonic() - t0,
                                 "log_tail": (proc.stdout + proc.stderr)[-8000:], "config": str(path),
                                 "finalize_returncode": fin.returncode, "finalize_out": fin.stdout + fin.stderr,
                                 "results": str(work / "results_corrupt")}
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--scenes", type=int, default=2)
    ap.add_argument("--clips-per-scene", type=int, default=1)
    ap.add_argument("--clip-seconds", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--ci-renders", action="store_true",
                    help="the replica test's scan_refs: 40 views at 320x240 (default: the schema's)")
    ap.add_argument("--corrupt", action="store_true", help="then damage one clip's video and run val again")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    conf = {"seed": args.seed, "scenes": args.scenes, "clips_per_scene": args.clips_per_scene,
            "clip_seconds": args.clip_seconds, "scale": args.scale}
    extra = {"scan_refs": {"width": 320, "height": 240, "max_views": 40, "geo": 12}} if args.ci_renders else None
    report = run(args.work, conf, args.cores, extra=extra, corrupt=args.corrupt)
    print(f"replica: {report['replica']['conf']} generated in {report['replica']['generate_s']:.0f} s; "
          f"download (annotations, 3d, 3d_scans) {report['download_s']:.1f} s")
    for split, r in report["runs"].items():
        print(f"\n{split}: snakemake exit {r['returncode']}, {r['wall_s']:.0f} s wall")
        print(f"  {'rule':<16}{'jobs':>5}{'total s':>10}{'max s':>8}")
        for rule, t in sorted(r["stages"].items(), key=lambda kv: -kv[1]["total_s"]):
            print(f"  {rule:<16}{t['jobs']:>5}{t['total_s']:>10.1f}{t['max_s']:>8.1f}")
        if "metrics" in r:
            m = r["metrics"]
            print("  metrics: " + ", ".join(f"{k} {m[k]:.4g}" if isinstance(m[k], float) else f"{k} {m[k]}"
                                            for k in ("succ", "qwp", "succ_star", "l2", "angle", "n_queries") if k in m))
        if r["returncode"]:
            print(r["log_tail"][-3000:])
    if "corrupt" in report:
        c = report["corrupt"]
        print(f"\ncorrupted clip {c['clip']}: snakemake --keep-going exit {c['returncode']}, "
              f"{c['wall_s']:.0f} s; vq3d finalize exit {c['finalize_returncode']}")
        print(c["finalize_out"][-1500:])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0 if all(r["returncode"] == 0 for r in report["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
