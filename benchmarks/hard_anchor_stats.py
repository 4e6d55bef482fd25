"""The statistics the hard synthetic tier (`synth.preset: hard`) draws from, derived from the real
anchors, and the tier's own statistics measured side by side with them.

    python benchmarks/hard_anchor_stats.py --write-table   # (re)write workflow/vq3d/synth/hard_stats.json
    python benchmarks/hard_anchor_stats.py [--seeds 0 1 2] [--scenes 2] [--work DIR]

`--write-table` reads ../shared/anchors (never copied into the repository): Ego4D's
scan_to_intrinsics.json (the real RADIAL_FISHEYE calibrations: 5 entries, 1440×1080 and
1920×1080) and EgoLoc's vq_val_vq3d.json (44 clips, 228 queries), and writes quantile tables
(5 % steps) of clip duration, query-frame position, response-track length and gap, visual-crop
short side (at 1080 p), crop aspect and crop position. The generator draws each quantity by
inverse CDF from these tables (vq3d.synth.hard).

Without it: generates the hard tier (the `ci` variant by default: see vq3d.synth.hard.SCALES; its
durations and sizes are scaled back to full scale for the comparison) for each seed and prints
its statistics next to the anchors' (medians and quartiles), as in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).parent))
ANCHORS = REPO.parent / "shared" / "anchors"
TABLE = REPO / "workflow" / "vq3d" / "synth" / "hard_stats.json"
LEVELS = np.linspace(0, 1, 21)
CLIP_FPS = 5


def query_records(queries_file: Path) -> tuple[list[float], list[dict]]:
    """(clip durations in s, one record per query) from a VQ2D-style query file (val: with tracks)."""
    data = json.loads(Path(queries_file).read_text())
    durations, records = [], []
    for video in data["videos"]:
        for clip in video["clips"]:
            dur = float(clip["clip_end_sec"] - clip["clip_start_sec"])
            durations.append(dur)
            last = dur * CLIP_FPS  # clip frame of the end time
            for ann in clip["annotations"]:
                for q in ann["query_sets"].values():
                    track = q.get("response_track") or []
                    if not q.get("is_valid", True) or not track:
                        continue
                    vc = q["visual_crop"]
                    frames = [b["frame_number"] for b in track]
                    short = min(vc["width"], vc["height"]) * 1080 / vc["original_height"]
                    records.append({
                        "duration_s": dur,
                        "query_frac": q["query_frame"] / last,
                        "track_len": max(frames) - min(frames) + 1,
                        "gap_frac": (q["query_frame"] - max(frames)) / last,
                        "gap_frames": q["query_frame"] - max(frames),
                        "crop_short_1080": short,
                        "crop_aspect": vc["width"] / vc["height"],
                        "crop_offset_frac": (vc["frame_number"] - q["query_frame"]) / last,
                        "resolution": [vc["original_width"], vc["original_height"]],
                    })
    return durations, records


QUANTITIES = ("query_frac", "track_len", "gap_frac", "gap_frames", "crop_short_1080", "crop_aspect", "crop_offset_frac")


def write_table() -> dict:
    intr = json.loads((ANCHORS / "ego4d/VQ3D/data/scan_to_intrinsics.json").read_text())
    durations, records = query_records(ANCHORS / "egoloc/data/metadata/vq_val_vq3d.json")
    cameras = []
    for scan, per_res in sorted(intr.items()):
        for key, p in sorted(per_res.items()):
            w, h = (int(s.strip(" '")) for s in key.strip("()").split(","))
            cameras.append({"scan": scan, "width": w, "height": h, **{k: float(p[k]) for k in ("f", "cx", "cy", "k1", "k2")}})
    res = [tuple(r["resolution"]) for r in records]
    table = {
        "source": "derived by benchmarks/hard_anchor_stats.py --write-table from the anchors "
                  "(Ego4D VQ3D/data/scan_to_intrinsics.json; EgoLoc data/metadata/vq_val_vq3d.json)",
        "levels": LEVELS.round(2).tolist(),
        "clips": len(durations), "queries": len(records),
        "cameras": cameras,
        "resolution_share": {f"{w}x{h}": res.count((w, h)) / len(res) for w, h in sorted(set(res))},
        "quantiles": {"duration_s": np.quantile(durations, LEVELS).round(3).tolist(),
                      **{k: np.quantile([r[k] for r in records], LEVELS).round(4).tolist() for k in QUANTITIES}},
    }
    text = json.dumps(table, indent=1)  # number lists on one line each: a readable, diffable table
    text = re.sub(r"\[\s*([-0-9.e,\s]+?)\s*\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    TABLE.write_text(text + "\n")
    return table


def tier_records(data: Path, time_scale: float) -> tuple[list[float], list[dict]]:
    """The generated tier's statistics in full-scale units (durations / time_scale)."""
    durations, records = query_records(data / "vq_val_vq3d.json")  # crop sizes per 1080 rows already
    return [d / time_scale for d in durations], records


def contact_sheet(data: Path, out: Path, per_clip: int = 4) -> None:
    """Hard-tier clip frames (evenly spaced, letterboxed to 320×240, each labelled with its frame
    number) and every query's visual crop enlarged, labelled with title and size."""
    import cv2

    from synth_realism import clip_frames

    q2 = json.loads((data / "vq_val_vq3d.json").read_text())
    tiles = []

    def fit(img, label):
        h, w = img.shape[:2]
        s = min(320 / w, 220 / h)
        small = cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))),
                           interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST)
        tile = np.full((240, 320, 3), 40, np.uint8)
        y0, x0 = (220 - small.shape[0]) // 2, (320 - small.shape[1]) // 2
        tile[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        cv2.putText(tile, label, (5, 235), 0, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
        return tile

    for video in q2["videos"]:
        for clip in video["clips"]:
            frames = clip_frames(data, clip["clip_uid"])
            for i in np.linspace(0, len(frames) - 1, per_clip).astype(int):
                tiles.append(fit(frames[i], f"{clip['clip_uid']} frame {i}"))
            for qs in clip["annotations"][0]["query_sets"].values():
                c = qs["visual_crop"]
                x, y, w, h = (int(round(c[k])) for k in ("x", "y", "width", "height"))
                crop = frames[c["frame_number"]][y:y + h, x:x + w]
                tiles.append(fit(crop, f"crop: {qs['object_title']} {w}x{h} px"))
    while len(tiles) % 6:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + 6]) for i in range(0, len(tiles), 6)]
    cv2.imwrite(str(out), np.vstack(rows))


def _q(values, p):
    return float(np.quantile(values, p)) if len(values) else float("nan")


def compare(anchor, tier) -> str:
    (ad, ar), (td, tr) = anchor, tier
    rows = [("clip duration s", ad, td, ".0f"),
            ("query frame (fraction of clip)", [r["query_frac"] for r in ar], [r["query_frac"] for r in tr], ".2f"),
            ("response track length (frames)", [r["track_len"] for r in ar], [r["track_len"] for r in tr], ".0f"),
            ("track end → query frame (fraction)", [r["gap_frac"] for r in ar], [r["gap_frac"] for r in tr], ".3f"),
            ("track end → query frame (frames)", [r["gap_frames"] for r in ar], [r["gap_frames"] for r in tr], ".0f"),
            ("visual crop short side (px at 1080 p)", [r["crop_short_1080"] for r in ar],
             [r["crop_short_1080"] for r in tr], ".0f"),
            ("visual crop aspect w/h", [r["crop_aspect"] for r in ar], [r["crop_aspect"] for r in tr], ".2f"),
            ("crop frame − query frame (fraction)", [r["crop_offset_frac"] for r in ar],
             [r["crop_offset_frac"] for r in tr], ".2f")]
    out = ["| quantity | anchors q25 / median / q75 (n) | hard tier q25 / median / q75 (n) |", "| --- | --- | --- |"]
    for name, a, t, spec in rows:
        cell = lambda v: (f"{_q(v, .25):{spec}} / **{_q(v, .5):{spec}}** / {_q(v, .75):{spec}} ({len(v)})")  # noqa: E731
        out.append(f"| {name} | {cell(a)} | {cell(t)} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write-table", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--scenes", type=int, default=2)
    ap.add_argument("--clips-per-scene", type=int, default=2)
    ap.add_argument("--queries-per-clip", type=int, default=3)
    ap.add_argument("--scale", default="ci", help="the tier's variant (vq3d.synth.hard.SCALES)")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--contact-sheet", type=Path, help="also write a contact sheet of the first seed's data here "
                                                        "(docs/synth_hard_contact_sheet.png)")
    args = ap.parse_args(argv)
    if args.write_table:
        t = write_table()
        print(f"wrote {TABLE.relative_to(REPO)}: {t['clips']} clips, {t['queries']} queries, "
              f"{len(t['cameras'])} cameras")
        return 0
    import logging

    from vq3d.synth.generate import generate
    from vq3d.synth.hard import SCALES

    logging.basicConfig(level=logging.WARNING)
    if not (ANCHORS / "egoloc/data/metadata/vq_val_vq3d.json").exists():
        print(f"no anchors at {ANCHORS}: nothing to compare with", file=sys.stderr)
        return 2
    anchor = query_records(ANCHORS / "egoloc/data/metadata/vq_val_vq3d.json")
    work = args.work or Path(tempfile.mkdtemp(prefix="hard_stats."))
    res_scale, time_scale = SCALES[args.scale]
    td, tr = [], []
    cams = set()
    for seed in args.seeds:
        data = work / f"seed{seed}"
        if not (data / "vq_val_vq3d.json").exists():
            generate(data, {"preset": "hard", "scale": args.scale, "seed": seed, "scenes": args.scenes,
                            "clips_per_scene": args.clips_per_scene, "queries_per_clip": args.queries_per_clip})
        d, r = tier_records(data, time_scale)
        td += d
        tr += r
        intr = json.loads((data / "scan_to_intrinsics.json").read_text())
        for per_res in intr.values():
            for key, p in per_res.items():
                cams.add(f"{key}: f {p['f']:.1f}, k1 {p['k1']:.3f}, k2 {p['k2']:.3f}")
    print(f"hard tier, variant {args.scale} (resolution × {res_scale:g}, time × {time_scale:.4g}; durations "
          f"shown ÷ {time_scale:.4g}, crop sizes per 1080 rows), seeds {args.seeds}: "
          f"{len(td)} clips, {len(tr)} queries; anchors: {len(anchor[0])} clips, {len(anchor[1])} queries\n")
    print(compare(anchor, (td, tr)))
    print("\ncameras used:", "; ".join(sorted(cams)))
    if args.contact_sheet:
        contact_sheet(work / f"seed{args.seeds[0]}", args.contact_sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
