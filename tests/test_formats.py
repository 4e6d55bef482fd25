"""vq3d.formats: every anchor JSON reads and round-trips; conventions checked against the values
EgoLoc stored; malformed input gives InputError naming the field."""

import json

import numpy as np
import pytest

import vq3d.formats as F
from vq3d.errors import InputError
from vq3d.formats import intrinsics, mapping, peaks, queries, vq3d_annotations as va

EGOLOC_VAL = "egoloc/data/vq3d_results/egoloc_val_mf_weighted2d_val.json"


def _to_json(p):
    """Read `p` with the reader for its format and return what the matching writer writes."""
    n = p.name
    if n.startswith("vq_"):
        return queries.queries_to_json(F.read_queries(p))
    if n.startswith("mapping"):
        return mapping.mapping_to_json(F.read_mapping(p))
    if "intrinsics" in n:
        return intrinsics.intrinsics_to_json(F.read_intrinsics(p))
    if "peak" in n:
        return peaks.peaks_to_json(F.read_peaks(p))
    if n == "clip_names_val_test.json":
        return {"clips": [vars(c) for c in F.read_clip_names(p)]}
    if n == "val_annot_vq3d.json":
        entries, raw = F.read_val_annot(p)
        assert len(entries) == len(raw)
        return raw
    F.read_results(p)
    return va.vq3d_to_json(F.read_vq3d(p))


def test_every_anchor_json_reads_and_round_trips(anchors, tmp_path):
    files = sorted(anchors.rglob("*.json"))
    assert len(files) >= 19
    for p in files:
        out = _to_json(p)
        assert json.loads(json.dumps(out)) == json.loads(p.read_text()), p


def test_writers_write_what_was_read(anchors, tmp_path):
    pairs = [
        ("egoloc/data/metadata/vq_val_vq3d.json", F.read_queries, F.write_queries),
        ("egoloc/data/metadata/vq3d_test_unannotated_template.json", F.read_vq3d, F.write_vq3d),
        ("egoloc/data/metadata/mapping_vq2d_to_vq3d_queries_annotations_val.json",
         F.read_mapping, F.write_mapping),
        ("egoloc/data/precomputed/scan_to_intrinsics_egoloc.json", F.read_intrinsics,
         F.write_intrinsics),
        ("egoloc/2d_retrieval/data/vq2d_test_vq3d_peak_clip.json", F.read_peaks, F.write_peaks),
    ]
    for rel, read, write in pairs:
        out = tmp_path / "out.json"
        write(out, read(anchors / rel))
        assert json.loads(out.read_text()) == json.loads((anchors / rel).read_text()), rel


# ---- conventions against EgoLoc's stored values ----

def test_annotation_to_matterport_matches_egoloc(anchors):
    raw = json.loads((anchors / EGOLOC_VAL).read_text())
    n = 0
    for *_, qs, _ in va.iter_query_sets("x", raw):
        for i in (1, 2):
            ann = np.array(qs[f"gt_3d_vec_world_{i}"])
            assert np.allclose(F.annotation_to_matterport(ann), qs[f"mp_gt_3d_vec_world_{i}"])
            assert np.allclose(F.matterport_to_annotation(qs[f"mp_gt_3d_vec_world_{i}"]), ann)
        if qs.get("pred_3d_vec_world") is not None:
            assert np.allclose(F.annotation_to_matterport(qs["pred_3d_vec_world"]),
                               qs["mp_pred_3d_vec_world"])
        n += 1
    assert n == 164
    assert np.allclose(F.annotation_to_matterport([1.0, 2.0, 3.0]), [2.0, -1.0, 3.0])


def test_pose_file_convention_world_to_camera(anchors, tmp_path):
    """EgoLoc's query-frame poses are world→camera in the Matterport frame: written through our
    pose format and read back, they map the Matterport GT centre to EgoLoc's stored camera vector."""
    preds = F.read_results(anchors / EGOLOC_VAL)
    posed = [p for p in preds.values() if p.query_frame_pose is not None]
    assert len(posed) == 135
    mats = np.stack([p.query_frame_pose[:3] for p in posed])
    good = np.ones(len(posed), bool)
    good[::7] = False
    path = tmp_path / "poses.json"
    F.write_poses(path, {"c1": F.ClipPoses(good=good, cam_from_world=mats)})
    back = F.read_poses(path)["c1"]
    assert np.isnan(back.cam_from_world[0]).all() and not back.good[0]
    for i in np.flatnonzero(good):
        qs = posed[i].raw
        x = back.cam_from_world[i] @ np.append(qs["mp_gt_3d_vec_world_2"], 1.0)
        assert np.allclose(x, qs["mp_gt_3d_vec_1"], atol=1e-9)
        centre = back.world_from_cam(i)[:, 3]
        assert np.allclose(back.cam_from_world[i] @ np.append(centre, 1), 0, atol=1e-9)


def test_submission_is_matterport_frame(anchors):
    """EgoLoc's real test submission (scored on the server): query_frame_pose maps
    pred_3d_vec_world to pred_3d_vec_query_frame, and its predictions lie near the val objects'
    Matterport centres of the same scan, not near their annotation-frame centres."""
    preds = F.read_results(anchors / "egoloc/data/vq3d_results/egoloc_test_mf_weighted2d_test.json")
    n = 0
    for p in preds.values():
        if p.query_frame_pose is not None and p.world_mp is not None:
            assert np.allclose((p.query_frame_pose @ np.append(p.world_mp, 1))[:3], p.query_frame)
            n += 1
    assert n > 200
    val = F.read_vq3d(anchors / "egoloc/data/metadata/vq3d_val.json").queries
    for scan in {q.scan_uid for q in val}:
        pred = np.array([p.world_mp[:2] for p in preds.values()
                         if p.scan_uid == scan and p.world_mp is not None])
        ann = np.array([q.gt1.position[:2] for q in val if q.scan_uid == scan])
        mp = F.annotation_to_matterport(np.c_[ann, np.zeros(len(ann))])[:, :2]

        def near(g):  # median distance from a prediction to the nearest val object
            return np.median(np.min(np.linalg.norm(pred[:, None] - g[None], axis=2), axis=1))
        assert near(mp) < near(ann), scan  # measured 0.57–0.75 m vs 0.81–6.2 m


def test_fill_submission_converts_egoloc_results(anchors):
    raw = json.loads((anchors / "egoloc/data/metadata/vq3d_val.json").read_text())
    preds = F.read_results(anchors / EGOLOC_VAL)
    sub = F.fill_submission(raw, preds)
    n = 0
    for _, _, clip, ai, qset, qs, _ in va.iter_query_sets("x", sub):
        src = preds[(clip, ai, qset)].raw
        assert "3d_annotation_1" in qs  # template content kept
        if src.get("pred_3d_vec_world") is not None:
            assert np.allclose(qs["pred_3d_vec_world"], src["mp_pred_3d_vec_world"])
        if qs["query_frame_pose"] is not None:
            T = np.array(qs["query_frame_pose"])
            assert np.allclose((T @ np.append(qs["pred_3d_vec_world"], 1))[:3],
                               qs["pred_3d_vec_query_frame"])
            assert np.allclose(qs["pred_3d_vec_query_frame"], src["mp_pred_3d_vec_query_frame"])
            n += 1
    assert n == 135
    with pytest.raises(ValueError, match="absent from the annotations"):
        F.fill_submission(raw, {("nope", 0, "1"): {"pred_3d_vec_world": [0, 0, 0]}})


# ---- per format ----

def test_queries_val_and_test(anchors):
    val = F.read_queries(anchors / "egoloc/data/metadata/vq_val_vq3d.json")
    test = F.read_queries(anchors / "egoloc/2d_retrieval/data/vq_test_vq3d.json")
    assert (len(val.clips), len(val.queries)) == (44, 228)
    assert (len(test.clips), len(test.queries)) == (69, 368)  # one invalid query set skipped
    assert all(q.response_track and q.object_title for q in val.queries)
    assert all(q.response_track is None and q.object_title is None for q in test.queries)
    q = val.for_clip("1839af1c-6999-4bc4-87f7-550dd9be4b91")
    assert {x.query_set for x in q} == {"1", "2", "3"}
    one = next(x for x in q if x.query_set == "1")
    assert (one.query_frame, one.visual_crop.frame, one.visual_crop.original_width) == (1589, 1475, 1920)
    assert val.clips[one.clip_uid].clip_fps == 5.0


def test_queries_built_from_dataclasses(tmp_path):
    crop = F.Box(frame=3, x=1.5, y=2.0, width=10, height=20, original_width=64, original_height=48)
    qf = F.QueryFile(
        clips={"c1": F.ClipTiming("c1", "v1", 0.0, 10.0, 5.0, 0.0, 10.0)},
        queries=[F.Query("c1", "v1", 1, "2", 40, crop, [crop], "cup")])
    path = tmp_path / "q.json"
    F.write_queries(path, qf)
    back = F.read_queries(path)
    assert back.queries == qf.queries and back.clips == qf.clips


def _write(tmp_path, obj, name="f.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


def test_queries_errors_name_the_field(anchors, tmp_path):
    raw = json.loads((anchors / "egoloc/data/metadata/vq_val_vq3d.json").read_text())
    del raw["videos"][0]["clips"][0]["annotations"][0]["query_sets"]["1"]["query_frame"]
    with pytest.raises(InputError, match=r"videos\[0\]\.clips\[0\]\.annotations\[0\]\.query_sets\.1\.query_frame"):
        F.read_queries(_write(tmp_path, raw))
    raw = json.loads((anchors / "egoloc/data/metadata/vq_val_vq3d.json").read_text())
    raw["videos"][1]["clips"][0]["clip_uid"] = "../etc"
    with pytest.raises(InputError, match="unsafe clip_uid"):
        F.read_queries(_write(tmp_path, raw))
    with pytest.raises(InputError, match="does not exist"):
        F.read_queries(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        F.read_queries(tmp_path / "bad.json")


def test_vq3d_files(anchors, tmp_path):
    val = F.read_vq3d(anchors / "egoloc/data/metadata/vq3d_val.json")
    test = F.read_vq3d(anchors / "egoloc/data/metadata/vq3d_test_unannotated_template.json")
    assert len(val.queries) == 164 and all(q.gt1 is not None and q.gt2 is not None for q in val.queries)
    assert len(test.queries) == 264 and all(q.gt1 is None for q in test.queries)
    assert {q.scan_uid for q in val.queries} >= {"unict_Scooter mechanic_31"}
    q = val.queries[0]
    built = F.VQ3DFile(queries=[q])  # no raw: written from the dataclasses alone
    F.write_vq3d(tmp_path / "v.json", built)
    back = F.read_vq3d(tmp_path / "v.json").queries[0]
    assert back.key == q.key and np.allclose(back.gt2.dimension, q.gt2.dimension)
    raw = json.loads((anchors / "egoloc/data/metadata/vq3d_val.json").read_text())
    raw["videos"][0]["clips"][0]["annotations"][1]["query_sets"]["1"]["3d_annotation_1"]["position"]["y"] = "a"
    with pytest.raises(InputError, match=r"3d_annotation_1\.position\.y"):
        F.read_vq3d(_write(tmp_path, raw))


def test_mapping_lookup(anchors):
    m = F.read_mapping(anchors / "egoloc/data/metadata/mapping_vq2d_to_vq3d_queries_annotations_val.json")
    clip = "6c641082-044e-46a7-ad5f-85568119e09e"
    # keys are VQ3D queries, values VQ2D ones (VQ3D annotation 0 of this clip is {})
    assert m.to_vq2d(clip, 1, "3") == (clip, 0, "3")
    assert m.to_vq2d(clip, 0, "1") is None
    assert m.to_vq3d(clip, 0, "3") == (clip, 1, "3")
    vq3d = F.read_vq3d(anchors / "egoloc/data/metadata/vq3d_val.json").by_key()
    vq2d = {q.key: q for q in F.read_queries(anchors / "egoloc/data/metadata/vq_val_vq3d.json").queries}
    assert set(m.vq3d_to_vq2d) == set(vq3d)
    # ground truth for the direction: both sides name the same object
    for k3, k2 in m.vq3d_to_vq2d.items():
        assert vq3d[k3].object_title == vq2d[k2].object_title, (k3, k2)


def test_intrinsics_lookup(anchors, tmp_path):
    path = anchors / "egoloc/data/precomputed/scan_to_intrinsics_egoloc.json"
    intr = F.read_intrinsics(path)
    cam = F.lookup(intr, "unict_Scooter mechanic_31", 1920, 1080)
    assert cam.colmap_params == [cam.f, 960.0, 540.0, cam.k1, cam.k2]
    assert np.allclose(cam.K, [[cam.f, 0, 960], [0, cam.f, 540], [0, 0, 1]])
    half = F.lookup(intr, "unict_Scooter mechanic_31", 960, 540)
    assert (half.f, half.cx, half.cy, half.k1) == (cam.f / 2, 480.0, 270.0, cam.k1)
    small = F.lookup(intr, "unict_Bike mechanic_34", 720, 540)  # only 1440x1080 native
    assert small.cx == 360.0
    with pytest.raises(InputError, match="no intrinsics for scan_uid"):
        F.lookup(intr, "nope", 1920, 1080)
    with pytest.raises(InputError, match="none for 1000x1000"):
        F.lookup(intr, "unict_Baker_32", 1000, 1000)
    with pytest.raises(InputError, match="resolution key"):
        F.read_intrinsics(_write(tmp_path, {"s": {"1920x1080": {"f": 1, "cx": 1, "cy": 1, "k1": 0, "k2": 0}}}))
    with pytest.raises(InputError, match=r"s\.\('2', '2'\)\.k2"):
        F.read_intrinsics(_write(tmp_path, {"s": {"('2', '2')": {"f": 1, "cx": 1, "cy": 1, "k1": 0}}}))


def test_poses_errors(tmp_path):
    eye = np.eye(4)[:3].tolist()
    ok = F.read_poses(_write(tmp_path, {"c": {"good_poses": [True, False],
                                               "camera_poses": [eye, None]}}))["c"]
    assert ok.good.tolist() == [True, False] and np.isnan(ok.cam_from_world[1]).all()
    with pytest.raises(InputError, match="good_poses has 2 entries but camera_poses has 1"):
        F.read_poses(_write(tmp_path, {"c": {"good_poses": [True, True], "camera_poses": [eye]}}))
    bad = (2 * np.eye(4))[:3].tolist()
    with pytest.raises(InputError, match=r"c\.camera_poses\[0\].*not a rotation"):
        F.read_poses(_write(tmp_path, {"c": {"good_poses": [True], "camera_poses": [bad]}}))
    with pytest.raises(InputError, match=r"camera_poses\[0\] must be 3×4"):
        F.read_poses(_write(tmp_path, {"c": {"good_poses": [True], "camera_poses": [[1, 2]]}}))
    F.write_poses(tmp_path / "w.json", {"c": ok})
    written = json.loads((tmp_path / "w.json").read_text())["c"]
    assert written["camera_poses"][1] == [[0.0] * 4] * 3  # invalid frames written as zeros


def test_peaks_keys(anchors):
    qf = F.read_queries(anchors / "egoloc/data/metadata/vq_val_vq3d.json")
    entries, _ = F.read_val_annot(anchors / "egoloc/data/metadata/val_annot_vq3d.json")
    keys = F.dataset_uid_keys(entries, qf)
    assert len(set(keys.values())) == 228
    val = F.read_peaks(anchors / "egoloc/2d_retrieval/data/vq2d_val_vq3d_peak_clip.json")
    by_key = val.by_key(keys)
    assert len(by_key) == 228
    first = by_key[("1839af1c-6999-4bc4-87f7-550dd9be4b91", 0, "3")]
    assert (first[0].frame, first[0].x1, first[0].y2) == (64, 1221, 468)
    assert set(first[0].scores) == {"clip_score", "detection_score"}
    test = F.read_peaks(anchors / "egoloc/2d_retrieval/data/vq2d_test_vq3d_peak_clip.json")
    assert test.variant == "test" and len(test.by_key()) == 368
    tq = {q.key for q in F.read_queries(anchors / "egoloc/2d_retrieval/data/vq_test_vq3d.json").queries}
    assert set(test.by_key()) == tq


def test_peaks_errors(tmp_path):
    with pytest.raises(InputError, match="dataset_uids has 1 entries"):
        F.read_peaks(_write(tmp_path, {"predictions": {
            "predicted_response_track": [{"bboxes": []}, {"bboxes": []}], "dataset_uids": ["a"]}}))
    with pytest.raises(InputError, match=r"bboxes\[0\]\.fno"):
        F.read_peaks(_write(tmp_path, {"predictions": {
            "predicted_response_track": [{"bboxes": [{"x1": 1, "x2": 2, "y1": 1, "y2": 2}]}],
            "dataset_uids": ["a"]}}))
    with pytest.raises(InputError, match="neither"):
        F.read_peaks(_write(tmp_path, {"x": 1}))


def _dump(split):
    frames = [F.DumpFrame(0, [], []), F.DumpFrame(1, [F.PeakBox(1, x1=10, y1=20, x2=30, y2=44)], [0.25]),
              F.DumpFrame(2, [F.PeakBox(2, 10, 20, 30, 44), F.PeakBox(2, 1, 2, 3, 4)], [0.5, 0.125])]
    vc = {"frame_number": 5, "x": 1.5, "y": 2, "width": 3, "height": 4}
    uid = "val_0000000000" if split == "val" else {"clip_uid": "c", "query_frame": 3, "visual_crop": vc}
    extra = {"visual_crop_fno": 5, "response_track": []} if split == "val" else {"metadata": {"query_set": "1"}}
    return F.DetectionDump([uid], [F.DumpQuery("c", 3, vc, frames, extra)])


@pytest.mark.parametrize("split", ["val", "test"])
def test_dump_round_trip(tmp_path, split):
    dd = _dump(split)
    F.write_dump(tmp_path / "d.json", dd)
    raw = json.loads((tmp_path / "d.json").read_text())
    # EgoLoc's layout: boxes without scores, the scores in a parallel list per frame
    p = raw["dataset_predictions"][0]
    assert p["top_boxes_per_clip"][1] == [{"fno": 1, "x1": 10, "x2": 30, "y1": 20, "y2": 44}]
    assert p["top_scores_per_clip"] == [[], [0.25], [0.5, 0.125]]
    assert F.read_dump(tmp_path / "d.json") == dd == F.read_detection_file(tmp_path / "d.json")


def test_dump_errors(tmp_path):
    good = peaks.dump_to_json(_dump("val"))
    with pytest.raises(InputError, match="dataset_uids has 2 entries, dataset_predictions has 1"):
        F.read_dump(_write(tmp_path, {**good, "dataset_uids": ["a", "b"]}))
    bad = json.loads(json.dumps(good))
    bad["dataset_predictions"][0]["top_scores_per_clip"][1] = ["x"]
    with pytest.raises(InputError, match=r"top_scores_per_clip\[1\]\[0\] must be a finite number"):
        F.read_dump(_write(tmp_path, bad))
    bad["dataset_predictions"][0]["top_scores_per_clip"][1] = []
    with pytest.raises(InputError, match=r"top_boxes_per_clip\[1\] and top_scores_per_clip\[1\]"):
        F.read_dump(_write(tmp_path, bad))
    bad["dataset_predictions"][0]["top_scores_per_clip"][1] = [0.25]
    del bad["dataset_predictions"][0]["clip_uid"]
    with pytest.raises(InputError, match=r"missing field dataset_predictions\[0\].clip_uid"):
        F.read_detection_file(_write(tmp_path, bad))


def test_test_peaks_keep_empty_clips_and_annotations(tmp_path):
    # the exporter writes every clip and annotation of the query file, even without query sets
    pf = F.PeakFile("test", videos=[F.PeakVideo("v", [
        F.PeakClip("c1", []),
        F.PeakClip("c2", [F.PeakPrediction({}, {"annotation_uid": "a0"}),
                          F.PeakPrediction({"1": F.PeakTrack([F.PeakBox(4, 1, 2, 3, 4, {"detection_score": 0.5})],
                                                             {"score": 0.5})})])])])
    F.write_peaks(tmp_path / "p.json", pf)
    back = F.read_peaks(tmp_path / "p.json")
    assert back.videos == pf.videos and back.header["challenge"] == "ego4d_vq2d_challenge"
    assert back.by_key() == {("c2", 1, "1"): pf.videos[0].clips[1].predictions[1].query_sets["1"].boxes}
    assert back.by_key()[("c2", 1, "1")][0].score == 0.5


@pytest.mark.parametrize("split,rel", [
    ("val", "egoloc/data/metadata/vq_val_vq3d.json"),
    ("test", "egoloc/2d_retrieval/data/vq_test_vq3d.json")])
def test_exports_are_what_the_reader_reads(anchors, tmp_path, split, rel):
    """The export stage writes through the same format: what it writes reads back, and writing
    the read file gives the same JSON (real query files, no detections)."""
    from vq3d.detect.export import main as export_main
    export_main([], anchors / rel, tmp_path / "p.json", tmp_path / "d.json", split)
    for read, to_json in ((F.read_peaks, peaks.peaks_to_json), (F.read_dump, peaks.dump_to_json)):
        f = tmp_path / ("p.json" if read is F.read_peaks else "d.json")
        assert to_json(read(f)) == json.loads(f.read_text())
    n = sum(1 for q in F.read_queries(anchors / rel).queries)
    assert len(F.read_dump(tmp_path / "d.json").queries) == n


def test_clip_names(anchors):
    clips = F.read_clip_names(anchors / "egoloc/data/metadata/clip_names_val_test.json")
    assert sum(c.split == "val" for c in clips) == 44 and sum(c.split == "test" for c in clips) == 69


def test_scan_surface_readers_ply_round_trip_obj_polygons_and_bad_files(tmp_path):
    """The scan surfaces predict's `scan` depth reads: vq3d's mesh.ply back to its vertices and
    triangles; a MatterPak-style OBJ's `v`/`f` records with a/b/c corners, quads fanned and
    negative indices; truncated or malformed files name the file and the line."""
    from vq3d.errors import InputError
    from vq3d.formats.matterpak import read_obj_mesh
    from vq3d.formats.ply import read_ply_mesh, write_ply_mesh
    verts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0.5], [0, 1, 0.25]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    write_ply_mesh(tmp_path / "mesh.ply", verts, np.zeros((4, 3)), faces)
    v, f = read_ply_mesh(tmp_path / "mesh.ply")
    np.testing.assert_allclose(v, verts)
    np.testing.assert_array_equal(f, faces)
    data = (tmp_path / "mesh.ply").read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[:-5])
    with pytest.raises(InputError, match=r"cut\.ply.*truncated"):
        read_ply_mesh(tmp_path / "cut.ply")
    (tmp_path / "ascii.ply").write_bytes(data.replace(b"binary_little_endian", b"ascii"))
    with pytest.raises(InputError, match="not vq3d's mesh layout"):
        read_ply_mesh(tmp_path / "ascii.ply")
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\n"
                                    "usemtl a\nf 1/1 2/1 3/1 4/1\nf -4 -2 -1\n")
    v, f = read_obj_mesh(tmp_path / "m.obj")
    assert v.shape == (4, 3)
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])
    (tmp_path / "bad.obj").write_text("v 0 0 0\nv 1 0 0\nf 1 2 7\n")
    with pytest.raises(InputError, match="indexes a vertex that does not exist"):
        read_obj_mesh(tmp_path / "bad.obj")
    (tmp_path / "bad2.obj").write_text("v 0 0 0\nf 1 x 2\n")
    with pytest.raises(InputError, match="line 2"):
        read_obj_mesh(tmp_path / "bad2.obj")
