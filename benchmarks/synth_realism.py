"""Realism of the synthetic benchmark: does pycolmap SfM register a clip's 5 fps frames? Also
writes docs/synth_contact_sheet.png (sample clip frames and every visual crop).

    python benchmarks/synth_realism.py [--data DIR] [--clip N]

Without --data it generates the default dataset (config.yaml) into a temp folder first."""

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from vq3d.config import load_config
from vq3d.synth import layout
from vq3d.synth.generate import generate

REPO = Path(__file__).resolve().parents[1]


def clip_frames(data: Path, clip_uid: str) -> list[np.ndarray]:
    """Decode the clip's 5 fps frames from the source video (source frame indices in gt/clips.json)."""
    info = json.loads((data / "gt/clips.json").read_text())[clip_uid]
    wanted = set(info["source_frames"])
    cap = cv2.VideoCapture(str(data / "videos" / f"{info['video_uid']}.mp4"))
    frames, k = [], 0
    while len(frames) < len(wanted):
        ok, img = cap.read()
        if not ok:
            break
        if k in wanted:
            frames.append(img)
        k += 1
    return frames


def sfm(frames: list[np.ndarray], intr: dict, work: Path) -> tuple[int, float]:
    images = work / "images"
    images.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(images / f"color_{i:07d}.jpg"), f, [cv2.IMWRITE_JPEG_QUALITY, 95])
    h, w = frames[0].shape[:2]
    p = intr[f"('{w}', '{h}')"]
    db = work / "db.db"
    t = time.perf_counter()
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "RADIAL_FISHEYE"
    reader.camera_params = ",".join(str(p[k]) for k in ("f", "cx", "cy", "k1", "k2"))
    pycolmap.extract_features(db, images, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader)
    pycolmap.match_sequential(db)
    opts = pycolmap.IncrementalPipelineOptions()
    opts.ba_refine_focal_length = False
    opts.ba_refine_extra_params = False
    recs = pycolmap.incremental_mapping(db, images, work / "sparse", options=opts)
    best = max((r.num_reg_images() for r in recs.values()), default=0)
    return best, time.perf_counter() - t


def contact_sheet(data: Path, out: Path) -> None:
    q2 = json.loads((data / layout.FILES["queries_val"]).read_text())
    tiles = []
    for video in q2["videos"]:
        for clip in video["clips"]:
            frames = clip_frames(data, clip["clip_uid"])
            for i in np.linspace(0, len(frames) - 1, 3).astype(int):
                tiles.append(cv2.resize(frames[i], (320, 240)))
            for qs in clip["annotations"][0]["query_sets"].values():
                c = qs["visual_crop"]
                img = frames[c["frame_number"]].copy()
                x, y, w, h = (int(round(c[k])) for k in ("x", "y", "width", "height"))
                crop = img[y:y + h, x:x + w]
                s = 200 / max(w, h)
                crop = cv2.resize(crop, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_NEAREST)
                tile = np.full((240, 320, 3), 40, np.uint8)
                tile[20:20 + crop.shape[0], 60:60 + crop.shape[1]] = crop
                cv2.putText(tile, qs["object_title"], (5, 236), 0, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
                tiles.append(tile)
    while len(tiles) % 5:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + 5]) for i in range(0, len(tiles), 5)]
    cv2.imwrite(str(out), np.vstack(rows))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path)
    ap.add_argument("--clip", type=int, default=0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data
        if data is None:
            data = Path(tmp) / "synth"
            generate(data, load_config(REPO / "config.yaml")["synth"])
        contact_sheet(data, REPO / "docs" / "synth_contact_sheet.png")
        clip = sorted(json.loads((data / "gt/clips.json").read_text()))[a.clip]
        info = json.loads((data / "gt/clips.json").read_text())[clip]
        intr = json.loads((data / layout.FILES["intrinsics"]).read_text())[info["scan_uid"]]
        frames = clip_frames(data, clip)
        work = Path(tmp) / "sfm"
        work.mkdir()
        n, secs = sfm(frames, intr, work)
        print(f"SfM {clip}: registered {n}/{len(frames)} = {100 * n / len(frames):.1f}% of 5 fps frames "
              f"in the largest model ({secs:.0f} s: SIFT + sequential matching + incremental mapping)")


if __name__ == "__main__":
    main()
