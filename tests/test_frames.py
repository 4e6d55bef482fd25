"""The frames stage against ground truth: test videos whose every source frame shows its own index
as a 12-bit block pattern (robust to x264), so each extracted JPEG names the source frame it is."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from vq3d import frames
from vq3d.errors import InputError
from vq3d.formats.queries import ClipTiming, QueryFile, write_queries
from vq3d.video.ffmpeg import ffmpeg_exe

W, H, GX, GY, BITS = 320, 240, 4, 3, 12


def pattern(k: int, w: int = W, h: int = H) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    bw, bh = w // GX, h // GY
    for b in range(BITS):
        if k >> b & 1:
            y, x = divmod(b, GX)
            img[y * bh:(y + 1) * bh, x * bw:(x + 1) * bw] = 255
    return img


def read_index(path: Path) -> int:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img is not None, path
    h, w = img.shape
    bw, bh = w // GX, h // GY
    k = 0
    for b in range(BITS):
        y, x = divmod(b, GX)
        # the block's centre, away from edge ringing
        block = img[y * bh + bh // 4:(y + 1) * bh - bh // 4, x * bw + bw // 4:(x + 1) * bw - bw // 4]
        k |= int(block.mean() > 128) << b
    return k


def make_video(path: Path, n: int, rate: str, *, faststart: bool = False) -> Path:
    """n frames at `rate` fps (an ffmpeg rational), x264 with B-frames and a 1 s GOP."""
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{W}x{H}",
           "-r", rate, "-i", "-", "-c:v", "libx264", "-g", "30", "-bf", "2", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p"]
    cmd += ["-movflags", "+faststart"] if faststart else []
    proc = subprocess.Popen([*cmd, str(path)], stdin=subprocess.PIPE)
    for k in range(n):
        proc.stdin.write(pattern(k).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return {
        "30": make_video(d / "v30.mp4", 600, "30"),            # 20 s
        "15": make_video(d / "v15.mp4", 150, "15"),            # 10 s
        "ntsc": make_video(d / "v2997.mp4", 300, "30000/1001"),  # 10.01 s
        "fast": make_video(d / "vfast.mp4", 300, "30", faststart=True),
    }


def write_q(path: Path, clips: dict[str, tuple]) -> Path:
    """clips: uid -> (start_sec, end_sec) or (start_sec, end_sec, video_start_frame, video_end_frame)."""
    timings = {}
    for uid, t in clips.items():
        s, e = t[:2]
        frames_ = dict(video_start_frame=t[2], video_end_frame=t[3]) if len(t) == 4 else {}
        timings[uid] = ClipTiming(clip_uid=uid, video_uid="vid0", video_start_sec=s, video_end_sec=e,
                                  clip_fps=5.0, clip_start_sec=0.0, clip_end_sec=e - s, **frames_)
    write_queries(path, QueryFile(clips=timings, queries=[]))
    return path


CONF = {"fps": 5, "decoder": "cpu", "max_side": None, "jpeg_quality": 2}


def run(tmp_path, video, window, *, is_clip=False, conf=CONF, uid="clip0", **kwargs):
    q = write_q(tmp_path / "q.json", {uid: window})
    out = tmp_path / "out" / uid
    summary = frames.main(str(video), str(q), str(out), uid, is_clip, dict(conf), **kwargs)
    return out, summary


def ego4d_frames(start_frame, end_frame, original_fps, new_fps):
    """Ego4D's VQ2D/convert_videos_to_clips.py `frames_to_select`, written out: every
    original_fps // new_fps-th frame from start_frame to end_frame, end included."""
    assert original_fps % new_fps == 0 and end_frame >= start_frame
    return list(range(start_frame, end_frame + 1, original_fps // new_fps))


def check_frames(out: Path, want: list[int]):
    files = sorted(out.glob("color_*.jpg"))
    assert [f.name for f in files] == [f"color_{i:07d}.jpg" for i in range(len(want))]
    assert [read_index(f) for f in files] == want


def check_truth(out: Path, n: int, start: float, src_fps: float):
    """Nearest source frame in time (the rule for a non-whole fps ratio), ties up."""
    check_frames(out, [math.floor((start + i / 5) * src_fps + 0.5) for i in range(n)])


VIDEO_FRAMES = {"30": 600, "15": 150}


@pytest.mark.parametrize("key,rate,vsf,vef", [
    ("30", 30, 93, 291),     # (vef - vsf) % 6 == 0: the end frame is a clip frame
    ("30", 30, 12, 47),      # (vef - vsf) % 6 == 5, as one anchor test clip
    ("30", 30, 0, 600),      # the whole 20 s video: frame 600 is past its end, as in Ego4D
    ("15", 15, 30, 110),
])
def test_ego4d_rule_on_a_full_video(tmp_path, videos, key, rate, vsf, vef):
    out, summary = run(tmp_path, videos[key], (vsf / rate, vef / rate, vsf, vef))
    ref = ego4d_frames(vsf, vef, rate, 5)
    want = [k for k in ref if k < VIDEO_FRAMES[key]]  # Ego4D's script stops at the video's end
    check_frames(out, want)
    meta = json.loads((out / "frames.json").read_text())
    assert meta == summary
    assert meta["expected_count"] == len(ref) and meta["count"] == len(want)
    assert meta["dropped_at_end"] == len(ref) - len(want)
    assert meta["first_source_frame"] == vsf and meta["step"] == rate / 5
    assert meta["size"] == [W, H] and meta["decoder"] == "cpu"


def test_negative_start_sec_with_start_frame_zero(tmp_path, videos):
    # as 2 val and 5 test clips of the anchors: video_start_sec -0.0123, video_start_frame 0
    out, summary = run(tmp_path, videos["30"], (-0.012304733333333331, 1.9876952666666666, 0, 60))
    check_frames(out, ego4d_frames(0, 60, 30, 5))
    assert summary["count"] == 11 and summary["source"]["window_sec"] == [0.0, 2.0]


def test_frame_numbers_from_seconds_when_absent(tmp_path, videos):
    # no video_start_frame/video_end_frame: round(sec · fps), then the same rule
    out, summary = run(tmp_path, videos["30"], (3.11, 9.7))
    check_frames(out, ego4d_frames(93, 291, 30, 5))
    out, summary = run(tmp_path, videos["30"], (-0.0123, 1.0))  # rounds to frame 0
    check_frames(out, ego4d_frames(0, 30, 30, 5))


def test_ntsc_rate_nearest_in_time(tmp_path, videos):
    rate = 30000 / 1001
    out, summary = run(tmp_path, videos["ntsc"], (1.23, 8.0))
    vsf, vef = round(1.23 * rate), round(8.0 * rate)
    n = math.floor((vef - vsf) * 5 / rate) + 1
    check_truth(out, n, vsf / rate, rate)
    assert summary["count"] == n


def test_record_disagreeing_with_the_video_is_refused(tmp_path, videos):
    # frame numbers of a 60 fps video given for this 30 fps one
    with pytest.raises(InputError, match=r"video_start_frame 120 is 4.000 s .* video_start_sec is 2.0"):
        run(tmp_path, videos["30"], (2.0, 4.0, 120, 240))


def test_canonical_clip_starts_at_zero(tmp_path, videos):
    # a clip at [100, 106] s (frames 3000..3180) of some full-scale video: the clip file itself
    # starts at the clip's first frame
    out, summary = run(tmp_path, videos["30"], (100.0, 106.0, 3000, 3180), is_clip=True)
    check_frames(out, [k - 3000 for k in ego4d_frames(3000, 3180, 30, 5)])
    assert summary["count"] == 31 and summary["source"]["window_sec"] == [0.0, 6.0]


def test_max_side_downscales(tmp_path, videos):
    out, summary = run(tmp_path, videos["30"], (1.0, 3.0), conf={**CONF, "max_side": 160})
    assert summary["size"] == [160, 120]
    img = cv2.imread(str(out / "color_0000000.jpg"))
    assert img.shape == (120, 160, 3)
    assert [read_index(p) for p in sorted(out.glob("color_*.jpg"))] == [30 + 6 * i for i in range(11)]


@pytest.mark.parametrize("decoder", ["cpu", "cuda"])
def test_ffmpeg_takes_the_rules_threads(tmp_path, videos, monkeypatch, decoder):
    """The job's threads cap ffmpeg's decoder (CPU), filters and JPEG encoder (the rule's
    `threads`, not every CPU of the node); the frames do not depend on the count. The cuda
    request falls back to the CPU here when the machine has no NVDEC, with the same caps."""
    calls = []
    real = frames.run_ffmpeg

    def recording(args, **kw):
        calls.append(args)
        return real(args, **kw)

    monkeypatch.setattr(frames, "run_ffmpeg", recording)
    outputs = {}
    for n in (1, 3):
        calls.clear()
        out, _ = run(tmp_path / str(n), videos["30"], (2.0, 5.0), threads=n,
                     conf={**CONF, "decoder": decoder})
        for args in calls:
            i = args.index("-i")
            assert args[args.index("-filter_threads") + 1] == str(n)
            assert args[i + 1:][args[i + 1:].index("-threads") + 1] == str(n)  # the encoder
            if "-hwaccel" not in args:  # the CPU decoder
                assert args[:i][args[:i].index("-threads") + 1] == str(n)
        assert calls and (decoder == "cuda" or (len(calls) == 1 and "-hwaccel" not in calls[0]))
        outputs[n] = [p.read_bytes() for p in sorted(out.glob("*.jpg"))]
    assert len(outputs[1]) == 16 and outputs[1] == outputs[3]


def test_cuda_request_falls_back_to_cpu(tmp_path, videos):
    if frames.choose_decoder("auto", videos["30"]) == "cuda":
        pytest.skip("a working NVDEC is present; the fallback path cannot be forced here")
    out, summary = run(tmp_path, videos["30"], (1.0, 2.0), conf={**CONF, "decoder": "cuda"})
    assert summary["decoder"] == "cpu"
    check_truth(out, 6, 1.0, 30)


def test_window_slightly_past_end_is_tolerated(tmp_path, videos):
    # 20 s video: targets 19.8 s exists; 20.0 s (i=5) lies past the last frame (19.967 s)
    out, summary = run(tmp_path, videos["30"], (18.8, 20.1))
    assert summary["expected_count"] == 7 and summary["count"] == 6
    assert summary["dropped_at_end"] == 1
    check_truth(out, 6, 18.8, 30)


def test_window_past_end_is_refused(tmp_path, videos):
    with pytest.raises(InputError, match=r"clip0.*ends .* after the video") as err:
        run(tmp_path, videos["30"], (15.0, 25.0))
    assert str(videos["30"]) in str(err.value)
    assert not (tmp_path / "out" / "clip0").exists()


def test_clip_not_in_queries(tmp_path, videos):
    q = write_q(tmp_path / "q.json", {"other": (0.0, 1.0)})
    with pytest.raises(InputError, match="clip_uid missing_clip is not in") as err:
        frames.main(str(videos["30"]), str(q), str(tmp_path / "o"), "missing_clip", False, CONF)
    assert str(q) in str(err.value)


def test_missing_video(tmp_path):
    with pytest.raises(InputError, match="does not exist") as err:
        run(tmp_path, tmp_path / "nope.mp4", (0.0, 1.0))
    assert "nope.mp4" in str(err.value)


def test_truncated_video_without_index(tmp_path, videos):
    bad = tmp_path / "cut.mp4"
    data = videos["30"].read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # moov atom is at the end: gone
    with pytest.raises(InputError, match="truncated or corrupt") as err:
        run(tmp_path, bad, (0.0, 1.0))
    assert "cut.mp4" in str(err.value)


def test_truncated_video_with_index(tmp_path, videos):
    # faststart: the index survives and claims 10 s, but the frame data stops early
    bad = tmp_path / "cutfast.mp4"
    data = videos["fast"].read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    # ffprobe believes the index (the decode then comes up short); probing with ffmpeg alone reads
    # the last packets there are and finds the video shorter than the window
    with pytest.raises(InputError, match=r"clip0: (decoded \d+ of 41 frames|decoding failed|"
                                         r"window .* ends .* after the video.*truncated)") as err:
        run(tmp_path, bad, (1.0, 9.0))
    assert "cutfast.mp4" in str(err.value)
    assert not (tmp_path / "out" / "clip0").exists()


def test_garbage_file(tmp_path):
    bad = tmp_path / "junk.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(InputError, match="junk.mp4: not a readable video"):
        run(tmp_path, bad, (0.0, 1.0))


def test_rerun_replaces_folder_whole(tmp_path, videos):
    out, _ = run(tmp_path, videos["30"], (0.0, 4.0))
    (out / "stale.txt").write_text("x")
    out, summary = run(tmp_path, videos["30"], (0.0, 2.0))
    assert not (out / "stale.txt").exists()
    assert len(list(out.glob("color_*.jpg"))) == 11 == summary["count"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_cli(tmp_path, videos):
    from vq3d.cli import main as cli_main

    q = write_q(tmp_path / "q.json", {"c1": (2.0, 3.0)})
    out = tmp_path / "cli_out"
    rc = cli_main(["frames", "--video", str(videos["30"]), "--queries", str(q), "--clip-uid", "c1",
                   "--out", str(out), "--decoder", "cpu", "--max-side", "200", "--threads", "1"])
    assert rc == 0
    meta = json.loads((out / "frames.json").read_text())
    assert meta["count"] == 6 and meta["size"] == [200, 150]
    assert [read_index(p) for p in sorted(out.glob("color_*.jpg"))] == [60, 66, 72, 78, 84, 90]
    rc = cli_main(["frames", "--video", str(videos["30"]), "--queries", str(q), "--clip-uid", "zz",
                   "--out", str(out)])
    assert rc == 1


def test_source_frame_rule():
    assert frames.source_frame(3.11, 0, 5, 30) == 93
    assert frames.source_frame(0.0, 7, 5, 30) == 42
    # a tie (target half-way between two frames) goes to the later frame
    assert frames.source_frame(1 / 60, 0, 5, 30) == 1
    assert frames.output_size(1920, 1080, 1000) == (1000, 562)
    assert frames.output_size(1080, 1920, 1000) == (562, 1000)
    assert frames.output_size(640, 480, 1000) == (640, 480)


QUERY_FILES = ("egoloc/data/metadata/vq_val_vq3d.json", "egoloc/2d_retrieval/data/vq_test_vq3d.json")
VQ3D_FILES = ("egoloc/data/metadata/vq3d_val.json",
              "egoloc/data/metadata/vq3d_test_unannotated_template.json",
              "ego4d/VQ3D/data/vq3d_test_unannotated_template.json")


def test_ego4d_rule_on_every_anchor_clip_record(anchors):
    """Every clip record of the anchors' VQ2D-style query files (44 val + 69 test), for both
    sources, against Ego4D's frames_to_select; the clips of the VQ3D files all have a record."""
    from vq3d.formats import read_queries, read_vq3d

    records, negative = {}, []
    for rel in QUERY_FILES:
        qf = read_queries(anchors / rel)
        raw = {c["clip_uid"]: c for v in qf.raw["videos"] for c in v["clips"]}
        for uid, t in qf.clips.items():
            records[uid] = t
            ref = ego4d_frames(raw[uid]["video_start_frame"], raw[uid]["video_end_frame"], 30, 5)
            for is_clip in (False, True):
                cf = frames.clip_frames(t, 30.0, 5.0, is_clip, where=rel)
                got = [cf.first + int(cf.step) * i for i in range(cf.count)]
                assert got == ref, uid
                # the time of frame i, as the extractor selects it, is that frame exactly
                base = 0 if is_clip else cf.first
                assert [frames.source_frame(cf.start, i, 5, 30) for i in (0, cf.count - 1)] == \
                    [ref[0] - cf.first + base, ref[-1] - cf.first + base]
            if t.video_start_sec < 0:
                negative.append(uid)
        # every box lies on the rule: video_frame_number = video_start_frame + 6 · frame_number
        for q in qf.queries:
            clip = raw[q.clip_uid]
            qs = clip["annotations"][q.annotation_index]["query_sets"][q.query_set]
            n = len(ego4d_frames(clip["video_start_frame"], clip["video_end_frame"], 30, 5))
            for box in [qs["visual_crop"], *qs.get("response_track", [])]:
                assert box["video_frame_number"] == clip["video_start_frame"] + 6 * box["frame_number"]
                assert 0 <= box["frame_number"] < n
    assert len(records) == 44 + 69 and len(negative) == 2 + 5
    assert {records[u].video_start_frame for u in negative} == {0}
    counts = {len(ego4d_frames(records[u].video_start_frame, records[u].video_end_frame, 30, 5))
              for u in records if records[u].video_end_sec - records[u].video_start_sec == 480}
    assert counts == {2401}  # not the 2400 of a half-open 480 s window
    for rel in VQ3D_FILES:
        clips = {q.clip_uid for q in read_vq3d(anchors / rel).queries}
        missing = {c for v in json.loads((anchors / rel).read_text())["videos"]
                   for c in (cl["clip_uid"] for cl in v["clips"])} - set(records)
        assert clips and not missing, (rel, missing)
