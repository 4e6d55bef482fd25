"""The download stage against a local S3 server (moto, 127.0.0.1) laid out like the Ego4D release:
the unmodified `ego4d` CLI runs in a subprocess and finds it through AWS_ENDPOINT_URL."""

from __future__ import annotations

import socket

import boto3
import pytest

from vq3d import download
from vq3d.errors import InputError

moto_server = pytest.importorskip("moto.server")

VIDEO_BUCKET = "ego4d-unict-milan"
CLIP = "0a1b2c3d-0000-4000-8000-000000000001"
CLIP_NO_OBJECT = "0a1b2c3d-0000-4000-8000-000000000002"
VIDEO = "9f8e7d6c-0000-4000-8000-000000000003"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    d = tmp_path_factory.mktemp("aws")
    (d / "credentials").write_text("[default]\naws_access_key_id = testing\n"
                                   "aws_secret_access_key = testing\n")
    (d / "config").write_text("[default]\nregion = us-east-1\n")
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "AWS_SHARED_CREDENTIALS_FILE": str(d / "credentials"),
           "AWS_CONFIG_FILE": str(d / "config")}
    with pytest.MonkeyPatch.context() as mp:
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                  "AWS_DEFAULT_PROFILE"):
            mp.delenv(k, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        s3 = boto3.session.Session(profile_name="default").client("s3")
        blobs = {CLIP: b"clip-bytes" * 5000, VIDEO: b"full-scale" * 7000}
        for bucket in (download.MANIFEST_BUCKET, VIDEO_BUCKET):
            s3.create_bucket(Bucket=bucket)
            # the Ego4D buckets are versioned; the CLI records object versions in manifest.ver
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for uid in (CLIP, VIDEO):
            s3.put_object(Bucket=VIDEO_BUCKET, Key=f"videos/{uid}.mp4", Body=blobs[uid])

        def manifest(dataset, uids):
            rows = ["video_uid,s3_path,benchmarks"]
            rows += [f"{u},s3://{VIDEO_BUCKET}/videos/{u}.mp4,[EM]" for u in uids]
            s3.put_object(Bucket=download.MANIFEST_BUCKET, Key=f"public/v2_1/{dataset}/manifest.csv",
                          Body="\n".join(rows).encode())

        manifest("clips", [CLIP, CLIP_NO_OBJECT])
        manifest("full_scale", [VIDEO])
        ann = {"vq_val.json": b'{"videos": []}', "vq_test_unannotated.json": b'{"videos": [1]}'}
        for name, body in ann.items():
            s3.put_object(Bucket=download.MANIFEST_BUCKET, Key=f"public/v2_1/annotations/{name}",
                          Body=body)
        rows = ["file_uid,s3_path,type"] + [
            f"{name.split('.')[0]},s3://{download.MANIFEST_BUCKET}/public/v2_1/annotations/{name},file"
            for name in ann]
        s3.put_object(Bucket=download.MANIFEST_BUCKET, Key="public/v2_1/annotations/manifest.csv",
                      Body="\n".join(rows).encode())
        yield {"s3": s3, "blobs": blobs, "annotations": ann, "port": port}
    server.stop()


def test_clip_download_then_no_refetch(tmp_path, s3_server, monkeypatch):
    out = tmp_path / "videos" / f"{CLIP}.mp4"
    assert download.main(str(out), CLIP, "clips", "default") == out
    assert out.read_bytes() == s3_server["blobs"][CLIP]
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no staging left behind

    # Second run with S3 unreachable: it must not even try.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    mtime = out.stat().st_mtime_ns
    assert download.main(str(out), CLIP, "clips", "default") == out
    assert out.stat().st_mtime_ns == mtime


def test_full_scale_video(tmp_path, s3_server):
    out = tmp_path / f"{VIDEO}.mp4"
    download.main(out, VIDEO, "videos", "default")
    assert out.read_bytes() == s3_server["blobs"][VIDEO]


def test_uid_not_in_manifest(tmp_path, s3_server):
    out = tmp_path / f"{VIDEO}.mp4"
    # a full-scale video uid asked for as a clip
    with pytest.raises(InputError, match=rf"uid {VIDEO} is not in the Ego4D v2_1 'clips' manifest") as e:
        download.main(out, VIDEO, "clips", "default")
    assert "s3://ego4d-consortium-sharing/public/v2_1/clips/manifest.csv" in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_fetch_leaves_nothing(tmp_path, s3_server):
    # listed in the manifest, object absent: the CLI exits 0 without a file; so must we not
    out = tmp_path / f"{CLIP_NO_OBJECT}.mp4"
    stale = tmp_path / ".ego4d_cli" / CLIP_NO_OBJECT / "v2" / "clips" / f"{CLIP_NO_OBJECT}.mp4"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a download")  # left by a killed earlier run
    with pytest.raises(download.DownloadError, match=f"did not fetch {CLIP_NO_OBJECT}"):
        download.main(out, CLIP_NO_OBJECT, "clips", "default")
    assert list(tmp_path.iterdir()) == []


def test_unknown_profile(tmp_path, s3_server):
    with pytest.raises(InputError, match="AWS profile 'nobody' not found"):
        download.main(tmp_path / f"{CLIP}.mp4", CLIP, "clips", "nobody")


def test_annotations(tmp_path, s3_server):
    files = download.download_annotations(tmp_path, "default")
    assert sorted(f.name for f in files) == sorted(s3_server["annotations"])
    for f in files:
        assert f.read_bytes() == s3_server["annotations"][f.name]
        assert f.parent == tmp_path / "v2" / "annotations"


def test_cli(tmp_path, s3_server, capsys):
    from vq3d.cli import main as cli_main

    out = tmp_path / "c.mp4"
    assert cli_main(["download", "--uid", CLIP, "--source", "clips", "--out", str(out)]) == 0
    assert out.read_bytes() == s3_server["blobs"][CLIP]
    assert cli_main(["download", "--uid", "not-there", "--out", str(tmp_path / "x.mp4")]) == 1
    assert "not-there is not in" in capsys.readouterr().err
