"""Stage `download`: fetch one Ego4D clip or full-scale video with the official `ego4d` CLI.

How the CLI works (ego4d/cli, read from its source): it reads the release manifest
`s3://ego4d-consortium-sharing/public/<version>/<dataset>/manifest.csv` (columns `video_uid` or
`file_uid`, and `s3_path`/`canonical_s3_location`), downloads each requested uid to
`<output_directory>/<major version>/<dataset>/<uid>.mp4` through boto3 (which writes a temporary
name and renames it), and records object versions in `manifest.ver` beside it. It exits 0 even when a
download failed or an object is missing, so the outcome is checked here: the file must exist and
match the S3 object's size before it is moved onto `video`.

Each call uses its own staging folder beside `video` (concurrent jobs never share the CLI's
manifest.csv/manifest.ver), and `video` only ever appears by an atomic rename of a complete file:
an interrupted download leaves nothing there, and a file there is never fetched again. The endpoint
comes from boto3's usual settings (AWS profile, AWS_ENDPOINT_URL), which is how the tests point the
unmodified CLI at a local S3 server."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import InputError, VQ3DError
from .formats.manifest import read_manifest
from .ids import check_id

log = logging.getLogger(__name__)

DATASETS = {"clips": "clips", "videos": "full_scale"}
VERSION = "v2_1"
MANIFEST_BUCKET = "ego4d-consortium-sharing"


class DownloadError(VQ3DError, RuntimeError):
    """The download failed for a reason other than bad input (network, S3, disk)."""

    kind = "download failed"


def manifest_url(version: str, dataset: str) -> str:
    return f"s3://{MANIFEST_BUCKET}/public/{version}/{dataset}/manifest.csv"


def _check_profile(aws_profile: str) -> None:
    import boto3.session
    from botocore.exceptions import ProfileNotFound

    try:
        boto3.session.Session(profile_name=aws_profile)
    except ProfileNotFound:
        where = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
        raise InputError(where, f"AWS profile {aws_profile!r} not found (Ego4D access keys go "
                                f"there: `aws configure --profile {aws_profile}`)") from None


def _run_cli(out_dir: Path, dataset: str, aws_profile: str, version: str,
             uids: list[str] | None = None) -> str:
    """Run the ego4d CLI in a subprocess; return its combined output."""
    cmd = [sys.executable, "-m", "ego4d.cli.cli", "--output_directory", str(out_dir),
           "--datasets", dataset, "--version", version, "--aws_profile_name", aws_profile,
           "--no-metadata", "-y"]  # no-metadata: skip the large ego4d.json we do not use
    if uids:
        cmd += ["--video_uids", *uids]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL)
    for line in proc.stdout.splitlines():
        if line.strip():
            log.debug("ego4d: %s", line)
    if proc.returncode != 0:
        log.warning("ego4d CLI exited with %d", proc.returncode)
    return proc.stdout


def _s3_size(aws_profile: str, s3_path: str) -> int:
    import boto3.session

    bucket, _, key = s3_path.removeprefix("s3://").partition("/")
    s3 = boto3.session.Session(profile_name=aws_profile).client("s3")
    return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])


def _tail(text: str, n: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:])


def main(video, uid, source, aws_profile, version: str = VERSION) -> Path:
    video = Path(video)
    check_id(uid, what="uid", source="the download request")
    if source not in DATASETS:
        raise InputError("config ego4d.source", f"must be one of {', '.join(DATASETS)}, got {source!r}")
    if video.is_file() and video.stat().st_size > 0:
        # Only complete files are ever renamed onto `video`, so presence means done.
        log.info("%s already present at %s; not fetched again", uid, video)
        return video
    dataset = DATASETS[source]
    _check_profile(aws_profile)
    staging = video.parent / ".ego4d_cli" / uid
    shutil.rmtree(staging, ignore_errors=True)  # leftovers of an interrupted run
    staging.mkdir(parents=True)
    try:
        output = _run_cli(staging, dataset, aws_profile, version, [uid])
        ds_dir = staging / version.split("_")[0] / dataset
        fetched = ds_dir / f"{uid}.mp4"
        manifest = ds_dir / "manifest.csv"
        url = manifest_url(version, dataset)
        if not manifest.is_file():
            raise DownloadError(f"could not read the Ego4D {dataset} manifest {url} "
                                f"(credentials, network, licence?): {_tail(output)}")
        rows = read_manifest(manifest)
        if uid not in rows:
            raise InputError(url, f"uid {uid} is not in the Ego4D {version} '{dataset}' manifest "
                                  f"({len(rows)} entries); is ego4d.source={source!r} right for it?")
        s3_path = rows[uid].get("s3_path") or rows[uid].get("canonical_s3_location") or "?"
        if not fetched.is_file():
            raise DownloadError(f"the ego4d CLI did not fetch {uid} from {s3_path} (missing object "
                                f"or no access?): {_tail(output)}")
        size, expected = fetched.stat().st_size, _s3_size(aws_profile, s3_path)
        if size != expected:
            raise DownloadError(f"{uid}: got {size} bytes, {s3_path} has {expected}")
        video.parent.mkdir(parents=True, exist_ok=True)
        os.replace(fetched, video)  # same file system: atomic
        log.info("%s: %d bytes -> %s", uid, size, video)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.parent.rmdir()  # only if no other job is using it
        except OSError:
            pass
    return video


FILE_DATASETS = ("annotations", "3d", "3d_scans")  # --dataset choices: whole-dataset downloads


def download_files(out_dir, dataset: str = "annotations", aws_profile: str = "default",
                   version: str = VERSION) -> list[Path]:
    """Fetch a file dataset (`annotations`, `3d`, `3d_scans`) into out_dir/<major>/<dataset>/.

    Each file is written by boto3 under a temporary name and renamed, so a file present is complete;
    a re-run fetches only files whose S3 version or size changed (the CLI's manifest.ver check).
    The CLI exits 0 when objects are missing or a download fails, so what arrived is checked here:
    every manifest row's file, at the S3 object's size."""
    if dataset not in FILE_DATASETS:
        raise InputError("vq3d download --dataset", f"must be one of {', '.join(FILE_DATASETS)}, got {dataset!r}")
    out_dir = Path(out_dir)
    _check_profile(aws_profile)
    output = _run_cli(out_dir, dataset, aws_profile, version)
    ds_dir = out_dir / version.split("_")[0] / dataset
    manifest = ds_dir / "manifest.csv"
    if not manifest.is_file():
        raise DownloadError(f"could not read the Ego4D {dataset} manifest {manifest_url(version, dataset)} "
                            f"(credentials, network, licence?): {_tail(output)}")
    rows = read_manifest(manifest)
    files = {ds_dir / Path(r.get("s3_path") or r.get("canonical_s3_location") or "").name:
             r.get("s3_path") or r.get("canonical_s3_location") for r in rows.values()}
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DownloadError(f"{len(missing)} of {len(files)} {dataset} files were not fetched "
                            f"({', '.join(missing[:5])}) into {ds_dir}: {_tail(output)}")
    short = [f"{f.name} ({f.stat().st_size} of {n} bytes)" for f, s3_path in files.items()
             if f.stat().st_size != (n := _s3_size(aws_profile, s3_path))]
    if short:
        raise DownloadError(f"{len(short)} {dataset} file(s) in {ds_dir} are incomplete: {', '.join(short[:5])}")
    log.info("%d %s files in %s", len(files), dataset, ds_dir)
    return sorted(files)


def download_annotations(out_dir, aws_profile: str = "default", version: str = VERSION) -> list[Path]:
    """Fetch the Ego4D annotations (`--datasets annotations`) into out_dir/<major>/annotations/."""
    return download_files(out_dir, "annotations", aws_profile, version)


def download_scans(out_dir, scans_dir=None, aws_profile: str = "default", version: str = VERSION,
                   geo_register=None) -> list[Path]:
    """Fetch the VQ3D scans (`--datasets 3d_scans`: one tar per scan, Ego4d issue #61) and unpack
    each into scans_dir/<scan folder>/ (default out_dir/scans), the layout vq3d reads (the VQ3D
    README's data/v1/3d/scans/<folder>). `geo_register`: EgoLoc's data/geo_register folder; each
    scan's renders there are copied into its folder as geo_register/ (where the pose stages look
    for them). Returns the scan folders."""
    from .scan_archive import add_geo_register, extract_scan

    scans_dir = Path(scans_dir) if scans_dir else Path(out_dir) / "scans"
    tars = download_files(out_dir, "3d_scans", aws_profile, version)
    folders = [extract_scan(t, scans_dir) for t in tars]
    if geo_register:
        for f in folders:
            add_geo_register(f, Path(geo_register))
    return folders


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--uid", help="clip uid (--source clips) or video uid (--source videos)")
    parser.add_argument("--source", choices=sorted(DATASETS), default="clips")
    parser.add_argument("--out", required=True,
                        help="the mp4 to write; with --dataset, the ego4d CLI output folder")
    parser.add_argument("--dataset", choices=FILE_DATASETS,
                        help="fetch a whole file dataset instead: annotations, 3d (VQ3D lists) or "
                             "3d_scans (the scans, unpacked into --scans-dir)")
    parser.add_argument("--annotations", action="store_true", help="same as --dataset annotations")
    parser.add_argument("--scans-dir", default=None, help="--dataset 3d_scans: where the scan folders go "
                                                          "(default OUT/scans)")
    parser.add_argument("--geo-register", default=None, help="--dataset 3d_scans: EgoLoc's data/geo_register; "
                                                             "each scan's renders are copied into its folder")
    parser.add_argument("--aws-profile", default="default")
    parser.add_argument("--version", default=VERSION, help="Ego4D release (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    dataset = "annotations" if args.annotations else args.dataset
    if dataset == "3d_scans":
        folders = download_scans(args.out, args.scans_dir, args.aws_profile, args.version, args.geo_register)
        print(f"{len(folders)} scans in {folders[0].parent if folders else args.scans_dir}")
        return 0
    if dataset:
        files = download_files(args.out, dataset, args.aws_profile, args.version)
        print(f"{len(files)} {dataset} files in {files[0].parent if files else args.out}")
        return 0
    if not args.uid:
        raise SystemExit("vq3d download: --uid is required (or --dataset)")
    path = main(args.out, args.uid, args.source, args.aws_profile, args.version)
    print(path)
    return 0
