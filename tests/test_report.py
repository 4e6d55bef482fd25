"""The report's figures and tables on small hand-made inputs, and its rules in the DAG."""

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from vq3d.errors import InputError
from vq3d.formats.clip_detections import ClipDetections, Peak, QueryDetections, ScoredBox, \
    write_clip_detections
from vq3d.formats.clip_predictions import ClipPredictions, PeakPrediction, QueryPrediction, \
    write_clip_predictions
from vq3d.formats.mapping import QueryMapping, write_mapping
from vq3d.formats.poses import ClipPoses, write_poses
from vq3d.formats.queries import Box, ClipTiming, Query, QueryFile, write_queries
from vq3d.formats.vq3d_annotations import Box3D, VQ3DFile, VQ3DQuery, annotation_to_matterport, \
    write_vq3d
from vq3d.report import coverage, detections, metrics_table, trajectory

CLIP, VIDEO, SCAN = "clip-a", "video-a", "scan-a"


def read_png(path):
    img = cv2.imread(str(path))
    assert img is not None, f"{path} is not a readable PNG"
    return img


def rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# ---- pose coverage -----------------------------------------------------------------------------

def write_summary(path, clip_uid, source, posed=True):
    data = {"clip_uid": clip_uid, "frames": len(source), "source": source}
    if posed:
        data["posed"] = {s: source.count(s) for s in ("sfm", "pnp", "interpolated", "none")}
    path.write_text(json.dumps(data))
    return path


def test_coverage_counts_come_from_posed_or_from_the_per_frame_sources(tmp_path):
    source = ["sfm"] * 5 + ["none", "interpolated"] + ["pnp"] * 3
    a = coverage.read_coverage(write_summary(tmp_path / "a.json", "a", source))
    b = coverage.read_coverage(write_summary(tmp_path / "b.json", "b", source, posed=False))
    assert a.counts == b.counts == {"sfm": 5, "pnp": 3, "interpolated": 1, "none": 1}
    assert list(a.counts) == ["sfm", "pnp", "interpolated", "none"]
    assert a.frames == 10 and a.per_frame == source


def test_coverage_refuses_a_summary_whose_counts_and_sources_disagree(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"clip_uid": "a", "source": ["sfm", "none"],
                                "posed": {"sfm": 2, "none": 1}}))
    with pytest.raises(InputError, match="source lists 2 frames but posed counts 3"):
        coverage.read_coverage(path)
    path.write_text(json.dumps({"clip_uid": "a", "posed": {"sfm": -1}}))
    with pytest.raises(InputError, match="posed.sfm must be a non-negative integer"):
        coverage.read_coverage(path)
    path.write_text(json.dumps({"clip_uid": "a"}))
    with pytest.raises(InputError, match="neither posed"):
        coverage.read_coverage(path)


def test_coverage_chart_grows_with_the_number_of_clips(tmp_path):
    paths = [write_summary(tmp_path / f"{i}.json", f"clip-{i}", ["sfm"] * 8 + ["none"] * i)
             for i in range(6)]
    coverage.main(paths[:1], tmp_path / "one.png")
    coverage.main(paths, tmp_path / "six.png")
    one, six = read_png(tmp_path / "one.png"), read_png(tmp_path / "six.png")
    assert six.shape[0] > one.shape[0]
    assert not list(tmp_path.glob(".*.png"))  # no temporary left behind


# ---- trajectory --------------------------------------------------------------------------------

def poses_with_centres(centres, good):
    """World->camera poses whose camera centres (-R^T t) are `centres`."""
    mats = []
    for i, c in enumerate(centres):
        R = rotation(i)
        mats.append(np.hstack([R, (-R @ c)[:, None]]))
    return ClipPoses(good=np.array(good), cam_from_world=np.where(
        np.array(good)[:, None, None], np.array(mats), np.nan))


def test_camera_centres_invert_world_to_camera_poses():
    centres = np.array([[1.0, 2.0, 1.5], [-3.0, 0.5, 1.6], [0.0, 0.0, 0.0]])
    got = trajectory.camera_centres(poses_with_centres(centres, [True, True, False]))
    np.testing.assert_allclose(got[:2], centres[:2], atol=1e-9)
    assert np.all(np.isnan(got[2]))


def gt_box(x, y, z):
    return Box3D(np.array([x, y, z]), np.zeros(3), np.array([0.2, 0.2, 0.2]))


@pytest.fixture
def clip_files(tmp_path):
    """Poses, predictions (VQ2D keys), annotations (VQ3D keys) and the mapping of one clip."""
    t = np.linspace(0, 2 * np.pi, 20)
    centres = np.stack([2 * np.cos(t), np.sin(t), np.full_like(t, 1.5)], axis=1)
    good = [i % 7 != 3 for i in range(20)]
    write_poses(tmp_path / "poses.json", {CLIP: poses_with_centres(centres, good)})
    write_summary(tmp_path / "summary.json", CLIP,
                  ["sfm" if g else "none" for g in good])
    write_clip_predictions(tmp_path / "pred.json", ClipPredictions(CLIP, SCAN, "sfm", "last", [
        QueryPrediction(0, "1", 15, pred_3d_vec_world=np.array([0.5, 0.4, 0.8]), peaks=[
            PeakPrediction(4, (1, 2, 3, 4), 0.9, point=np.array([0.6, 0.3, 0.8]))]),
        QueryPrediction(0, "2", 18, reason="no peak"),
    ]))
    # VQ3D annotation 1 set "3" is VQ2D annotation 0 set "1" (the anchors' shape of the mapping).
    write_vq3d(tmp_path / "vq3d.json", VQ3DFile([
        VQ3DQuery(VIDEO, CLIP, SCAN, 1, "3", "mug", gt_box(-0.4, 0.5, 0.8), gt_box(-0.4, 0.6, 0.8)),
        VQ3DQuery(VIDEO, CLIP, SCAN, 1, "4", "key", gt_box(1.0, 1.0, 0.2), gt_box(1.0, 1.0, 0.2)),
        VQ3DQuery(VIDEO, "clip-b", SCAN, 0, "1", "other clip", gt_box(9, 9, 9), gt_box(9, 9, 9)),
    ]))
    write_mapping(tmp_path / "mapping.json", QueryMapping(
        {(CLIP, 1, "3"): (CLIP, 0, "1"), (CLIP, 1, "4"): (CLIP, 0, "2")},
        {CLIP: VIDEO, "clip-b": VIDEO}, {}))
    return tmp_path


def test_trajectory_pairs_predictions_with_ground_truth_through_the_mapping(clip_files):
    objs = trajectory.collect_objects(CLIP, clip_files / "pred.json", clip_files / "vq3d.json",
                                      clip_files / "mapping.json")
    assert [o.label for o in objs] == ["mug (a0/q1)", "key (a0/q2)"]
    mug, key = objs
    np.testing.assert_allclose(mug.pred_world, [0.5, 0.4, 0.8])
    # Ground truth is turned from the annotation frame into the scan frame: (y, -x, z).
    np.testing.assert_allclose(mug.gt_world[0], [0.5, 0.4, 0.8])
    np.testing.assert_allclose(mug.gt_world[1], annotation_to_matterport([-0.4, 0.6, 0.8]))
    assert len(mug.peak_points) == 1
    assert key.pred_world is None and len(key.gt_world) == 2


def test_trajectory_plot_is_written_with_or_without_optional_inputs(clip_files):
    d = clip_files
    trajectory.main(d / "poses.json", d / "full.png", CLIP, summary=d / "summary.json",
                    predictions=d / "pred.json", annotations=d / "vq3d.json",
                    mapping=d / "mapping.json")
    trajectory.main(d / "poses.json", d / "bare.png", CLIP, predictions=d / "missing.json",
                    mapping=d / "missing-mapping.json")
    assert read_png(d / "full.png").shape[0] > 100 and read_png(d / "bare.png").shape[0] > 100


def test_trajectory_refuses_a_pose_file_of_another_clip(clip_files):
    with pytest.raises(InputError, match="no entry for clip clip-z"):
        trajectory.main(clip_files / "poses.json", clip_files / "x.png", "clip-z")
    with pytest.raises(InputError, match="clip_uid is clip-a, expected clip-z"):
        trajectory.collect_objects("clip-z", clip_files / "pred.json")


# ---- detections --------------------------------------------------------------------------------

ORIGINAL = (128, 96)   # boxes are in these pixels
DECODED = (64, 48)     # the frames on disk are half size


@pytest.fixture
def detect_files(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(12):
        img = np.full((DECODED[1], DECODED[0], 3), 90, np.uint8)
        if i == 2:  # the visual crop: a pure red square at original (40..60, 20..40)
            img[10:20, 20:30] = (0, 0, 255)
        cv2.imwrite(str(frames / f"color_{i:07d}.jpg"), img)
    crop = Box(2, 40, 20, 20, 20, *ORIGINAL)
    track = [Box(f, 60, 50, 16, 16, *ORIGINAL) for f in (6, 7, 8)]
    write_queries(tmp_path / "queries.json", QueryFile(
        clips={CLIP: ClipTiming(CLIP, VIDEO, 0, 10, 5, 0, 10)},
        queries=[Query(CLIP, VIDEO, 0, "1", 11, crop, track, "mug"),
                 Query(CLIP, VIDEO, 1, "2", 11, crop, None, "key")]))
    boxes = [(f, [ScoredBox(60, 50, 76, 66, s)]) for f, s in
             enumerate([0.1, 0.2, 0.1, 0.1, 0.3, 0.2, 0.7, 0.9, 0.6, 0.1, 0.0])]
    boxes[10] = (10, [])
    write_clip_detections(tmp_path / "det.json", ClipDetections(CLIP, "features", [
        QueryDetections(0, "1", 11, 2, ORIGINAL, boxes,
                        [Peak(4, ScoredBox(60, 50, 76, 66, 0.3)),
                         Peak(7, ScoredBox(60, 50, 76, 66, 0.9))]),
        QueryDetections(1, "2", 11, 2, ORIGINAL, [], []),
    ]))
    return tmp_path


def test_score_curve_takes_each_frames_best_box_and_zero_for_none(detect_files):
    from vq3d.formats.clip_detections import read_clip_detections
    q = read_clip_detections(detect_files / "det.json").queries[0]
    frames, scores = detections.score_curve(q)
    assert frames.tolist() == list(range(11))
    assert scores[7] == pytest.approx(0.9) and scores[10] == 0.0


def test_crop_thumbnail_scales_original_pixels_to_the_decoded_frame(detect_files):
    img = detections.load_frame(detect_files / "frames", 2)
    thumb = detections.crop_thumbnail(img, Box(2, 40, 20, 20, 20, *ORIGINAL), ORIGINAL, margin=0)
    assert thumb.shape[:2] == (10, 10)
    r, g, b = thumb[2:-2, 2:-2].reshape(-1, 3).mean(axis=0)  # RGB: the square is red
    assert r > 200 and g < 60 and b < 60
    assert detections.load_frame(detect_files / "frames", 99) is None


def test_detection_figures_one_per_query_even_without_peaks(detect_files):
    d = detect_files
    out = d / "report" / CLIP
    detections.main(d / "det.json", d / "queries.json", d / "frames", out, CLIP)
    assert sorted(p.name for p in out.iterdir()) == ["a0_q1.png", "a1_q2.png"]
    for p in out.iterdir():
        assert read_png(p).shape[1] > 500


def test_detection_figures_refuse_another_clips_file(detect_files):
    d = detect_files
    with pytest.raises(InputError, match="expected clip-z"):
        detections.main(d / "det.json", d / "queries.json", d / "frames", d / "o", "clip-z")
    assert not (d / "o").exists()


def test_figure_names_are_safe_file_names():
    assert detections.figure_name(3, "1") == "a3_q1.png"
    assert detections.figure_name(0, "../x") == "a0_q.._x.png"
    assert re.fullmatch(r"[\w.-]+", detections.figure_name(0, "a b/c"))


# ---- metrics table -----------------------------------------------------------------------------

CSV_HEAD = "clip_uid,annotation_index,query_set,object_title,has_3d,has_pose,l2,angle," \
           "dist_to_centre,threshold,success\n"


def test_metrics_table_renders_summary_and_flags_failed_queries(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps(
        {"l2": 0.51234, "angle": None, "succ": 50.0, "succ_star": 50.0, "qwp": 100.0,
         "n_queries": 2}))
    (tmp_path / "q.csv").write_text(
        CSV_HEAD + "clip-a,0,1,mug <b>,True,True,0.2,0.1,0.2,1.5,True\n"
                   "clip-a,1,2,key,False,False,,,,1.2,False\n")
    metrics_table.main(tmp_path / "m.json", tmp_path / "q.csv", tmp_path / "t.html", "val")
    page = (tmp_path / "t.html").read_text()
    assert "<td>0.512</td>" in page and "<td>—</td>" in page  # angle undefined
    assert "mug &lt;b&gt;" in page  # titles are escaped
    assert page.count("<tr class='ok'>") == 1 and page.count("<tr class='fail'>") == 1


def test_metrics_table_names_the_bad_field(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"l2": 1.0}))
    with pytest.raises(InputError, match="missing field angle"):
        metrics_table.read_metrics(tmp_path / "m.json")
    (tmp_path / "q.csv").write_text(CSV_HEAD + "c,0,1,x,True,True,abc,,,1,False\n")
    with pytest.raises(InputError, match="line 2, column l2: not a number"):
        metrics_table.read_rows(tmp_path / "q.csv")
    (tmp_path / "q.csv").write_text("clip_uid,l2\n")
    with pytest.raises(InputError, match="missing column"):
        metrics_table.read_rows(tmp_path / "q.csv")


# ---- rules -------------------------------------------------------------------------------------

def test_report_plots_name_every_figure_for_every_clip(repo, tmp_path):
    # REPORT_PLOTS (rules/report.smk) as the target of a wrapper workflow, so this checks the
    # report rules whether or not final_targets() lists them yet.
    (tmp_path / "Snakefile").write_text(
        f'include: "{repo / "Snakefile"}"\n\n'
        'rule report_only:\n    input:\n        REPORT_PLOTS,\n    default_target: True\n')
    cmd = [sys.executable, "-m", "snakemake", "-n", "-s", str(tmp_path / "Snakefile"),
           "-d", str(tmp_path), "--configfile", str(repo / "config.yaml")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr + run.stdout
    table = run.stdout.split("Job stats:")[1].split("Reasons:")[0]
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    assert counts["report_trajectory"] == counts["report_detections"] == 4  # 2 scenes x 2 clips
    assert counts["report_pose_coverage"] == counts["report_metrics_table"] == 1
