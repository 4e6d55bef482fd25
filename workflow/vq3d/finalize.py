"""`vq3d finalize --configfile my.yaml`: the split's submission and metrics after a run in which
some clips failed (`snakemake --keep-going`), as the challenge allows: every query of a failed
clip is null. Writes, under `<results_dir>/final/`:
- `submission.json`: the template filled with every prediction that exists (validated like the
  submission rule's own output);
- `metrics.json`, `per_query.csv` (val): the metrics over ALL queries of the split (a failed
  clip's queries count as queries without a prediction);
- `failed_clips.tsv`: one line per clip without a prediction: clip, the stage that failed, its
  one-line reason (from the rule's log), and the log file.
A clip's data outcomes (an SfM that registers nothing, a query without a peak) are not failures:
the stages write them as results with reasons, and they are in the prediction files."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import InputError
from .formats.failures import FailedClip, write_failed_clips
from .slurm.status import log_error

log = logging.getLogger(__name__)

# Stages a clip's prediction waits for, in pipeline order, and how their log is named: by clip,
# download by video or clip uid, scan_refs by the clip's scan folder (one job serves its clips).
STAGES = ["download", "frames", "detect", "peaks", "pose_sfm", "scan_refs", "pose_register", "pose_pnp",
          "pose_merge", "pose_import", "predict"]


def failure_reason(logs: Path, clip_uid: str, video_uid: str, scan_folder: str = "") -> tuple[str, str, str]:
    """(stage, reason, log) of the first stage of a clip whose log holds an error line."""
    for stage in STAGES:
        uids = {"download": [video_uid, clip_uid], "scan_refs": [scan_folder] if scan_folder else []}.get(stage, [clip_uid])
        for uid in uids:
            path = logs / stage / f"{uid}.log"
            reason = log_error(path)
            if reason:
                return stage, reason, str(path)
    return "", "no prediction and no failed stage log (not run yet, or interrupted: rerun snakemake)", ""


def main(config: dict) -> dict:
    from . import evaluate
    from .dataset import clip_refs, dataset_files
    from .predict import submission

    results = Path(config["results_dir"])
    files = dataset_files(config)
    refs = clip_refs(config)
    final = results / "final"
    predictions, failed = [], []
    for r in refs:
        path = results / "predict" / f"{r.clip_uid}.json"
        if path.is_file():
            predictions.append(path)
        else:
            stage, reason, logfile = failure_reason(results / "logs", r.clip_uid, r.video_uid, r.scan_folder)
            failed.append(FailedClip(r.clip_uid, stage, reason, logfile))
    if not predictions:
        raise InputError(results / "predict", f"no clip of the {len(refs)} has a prediction: nothing to submit "
                                              "(run snakemake first)")
    sub = final / "submission.json"
    submission.main(predictions, files["annotations"], sub, mapping=files["mapping"])
    write_failed_clips(final / "failed_clips.tsv", failed)
    out = {"clips": len(refs), "predicted": len(predictions), "failed": failed, "submission": sub}
    if config["dataset"]["split"] == "val":
        out["metrics"] = evaluate.main(files["annotations"], sub, final / "metrics.json", final / "per_query.csv")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", required=True, help="the config file of the run")


def run(args: argparse.Namespace) -> int:
    from .config import load_config
    res = main(load_config(args.configfile))
    final = Path(res["submission"]).parent
    print(f"vq3d finalize: {res['predicted']}/{res['clips']} clips predicted; submission {res['submission']}")
    if "metrics" in res:
        m = res["metrics"]
        print(f"metrics over all {m['n_queries']} queries: {final / 'metrics.json'} (Succ {m['succ']}, QwP {m['qwp']})")
    for f in res["failed"]:
        print(f"failed clip {f.clip_uid}: {f.stage or 'unknown stage'}: {f.reason}"
              + (f" ({f.log})" if f.log else ""), file=sys.stderr)
    if res["failed"]:
        print(f"{len(res['failed'])} failed clip(s) listed in {final / 'failed_clips.tsv'}; their queries are null",
              file=sys.stderr)
    return 0
