"""`vq3d serve-replica`: a local S3 (moto server on 127.0.0.1) laid out as Ego4D's release, serving an
Ego4D-shaped replica (`vq3d synth --layout ego4d`), so the unmodified `ego4d` CLI downloads it.

Layout served (read from ego4d/cli/manifest.py and download.py): each dataset's manifest at
`s3://ego4d-consortium-sharing/public/<version>/<dataset>/manifest.csv`; every manifest row's
object at its `s3_path` (video rows: the file `<uid>.mp4`; file rows: the s3_path's basename);
versioned buckets (the CLI records object versions in `manifest.ver`). The replica's
`ego4d/v2/<dataset>/` folders are exactly those files, so publishing is: for every manifest, upload
it and the files it lists.

The endpoint and a throwaway profile reach the CLI through boto3's own settings (AWS_ENDPOINT_URL,
AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), written to an env file to `source`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import threading
from pathlib import Path

from ..errors import InputError
from ..formats.aws_env import write_aws_profile, write_env_file
from . import replica

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manifest_objects(dataset_dir: Path) -> list[tuple[Path, str]]:
    """(local file, s3 path) of every row of `dataset_dir/manifest.csv`, named as the CLI names them."""
    from ego4d.cli.manifest import list_videos_in_manifest

    manifest = dataset_dir / "manifest.csv"
    out = []
    for row in list_videos_in_manifest(manifest, set(), set()):
        local = dataset_dir / row.filename_base
        if not local.is_file():
            raise InputError(manifest, f"row {row.uid} names {local.name}, which is not in {dataset_dir}")
        out.append((local, row.s3_path))
    return out


def publish(replica_dir, s3, version: str = replica.CLI_VERSION) -> dict[str, int]:
    """Upload the replica's manifests and files to the S3 behind client `s3`; {dataset: files}."""
    root = Path(replica_dir) / "ego4d" / replica.CLI_DIR
    if not root.is_dir():
        raise InputError(root, "not an Ego4D-layout replica (make one with `vq3d synth --layout ego4d`)")
    made: set[str] = set()

    def bucket(name):
        if name not in made:
            s3.create_bucket(Bucket=name)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            made.add(name)

    counts = {}
    bucket(replica.MANIFEST_BUCKET)
    for d in sorted(p for p in root.iterdir() if (p / "manifest.csv").is_file()):
        objects = manifest_objects(d)
        for local, s3_path in objects:
            b, _, key = s3_path.removeprefix("s3://").partition("/")
            bucket(b)
            s3.upload_file(str(local), b, key)
        s3.upload_file(str(d / "manifest.csv"), replica.MANIFEST_BUCKET, f"public/{version}/{d.name}/manifest.csv")
        counts[d.name] = len(objects)
    return counts


def write_aws_files(aws_dir: Path, port: int, profile: str = "default") -> dict[str, str]:
    """Throwaway credentials and config for the local S3; the environment that selects them."""
    creds, config = write_aws_profile(aws_dir, profile, "replica", "replica", "us-east-1")
    return {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_CONFIG_FILE": str(config)}


@contextlib.contextmanager
def serving(replica_dir, aws_dir, port: int | None = None, profile: str = "default"):
    """Run the S3 server with the replica published; yields the environment to use it."""
    from moto.server import ThreadedMotoServer
    import boto3.session

    port = port or free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per S3 request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        env = write_aws_files(Path(aws_dir), port, profile)
        session = boto3.session.Session(aws_access_key_id="replica", aws_secret_access_key="replica",
                                        region_name="us-east-1")
        s3 = session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
        counts = publish(replica_dir, s3)
        log.info("serving %s on %s: %s", replica_dir, env["AWS_ENDPOINT_URL"],
                 ", ".join(f"{k} {v} files" for k, v in counts.items()))
        yield env
    finally:
        server.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replica", required=True, help="folder written by `vq3d synth --layout ego4d`")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--aws-dir", default=None, help="where to write the throwaway AWS credentials "
                                                         "(default: REPLICA/.aws)")
    parser.add_argument("--env-file", default=None, help="write the `export ...` lines here too "
                                                          "(default: REPLICA/s3.env)")


def run(args: argparse.Namespace) -> int:
    rep = Path(args.replica)
    aws_dir = Path(args.aws_dir) if args.aws_dir else rep / ".aws"
    env_file = Path(args.env_file) if args.env_file else rep / "s3.env"
    with contextlib.suppress(OSError):
        os.remove(env_file)  # a stale one from an earlier server would point at a dead port
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with serving(rep, aws_dir, args.port or None) as env:
        text = write_env_file(env_file, env)
        print(f"# local S3 serving {rep}; in another shell: source {env_file}", flush=True)
        print(text, end="", flush=True)
        stop.wait()
    with contextlib.suppress(OSError):
        os.remove(env_file)
    return 0
