"""Annotation scan names -> scan folders: Ego4D's table by default, a validated JSON file otherwise,
and a clear error naming every unmapped scan before any job is built."""

from __future__ import annotations

import json

import pytest
from conftest import vq3d_clip, vq3d_doc, write_doc

from vq3d.dataset import clip_refs
from vq3d.errors import InputError
from vq3d.formats.scan_names import EGO4D_SCAN_NAMES, read_scan_names, write_scan_names

ANCHOR_VAL = "egoloc/data/metadata/vq3d_val.json"


def _ann(tmp_path, scans):
    return write_doc(tmp_path / "vq3d_val.json", vq3d_doc(
        [(f"v{i}", s, [vq3d_clip(f"c{i}", [{"1": {"object_title": "x"}}])]) for i, s in enumerate(scans)]))


def _config(ann, scan_names=None):
    return {"data_dir": "data", "dataset": {"kind": "ego4d", "split": "val"},
            "ego4d": {"annotations": str(ann), "queries": None, "mapping": None, "intrinsics": None,
                      "scans_dir": None, "videos_dir": None, "source": "clips", "scan_names": scan_names}}


def test_ego4d_table_is_run_all_data(tmp_path):
    # the four UNICT scans, as Ego4D's run_all_data.py and EgoLoc hard-code them
    assert EGO4D_SCAN_NAMES["unict_Scooter mechanic_31"] == "unict_3dscan_001"
    assert EGO4D_SCAN_NAMES["unict_Bike mechanic_34"] == "unict_3dscan_004"
    refs = clip_refs(_config(_ann(tmp_path, ["unict_Scooter mechanic_31", "unict_Baker_32"])))
    assert [(r.scan_uid, r.scan_folder) for r in refs] == [("unict_Scooter mechanic_31", "unict_3dscan_001"),
                                                         ("unict_Baker_32", "unict_3dscan_002")]


@pytest.mark.anchors
def test_every_anchor_scan_is_mapped(anchors):
    refs = clip_refs(_config(anchors / ANCHOR_VAL))
    assert {r.scan_folder for r in refs} == set(EGO4D_SCAN_NAMES.values())
    assert len(refs) == 44


def test_unmapped_names_all_named(tmp_path):
    ann = _ann(tmp_path, ["unict_Scooter mechanic_31", "iiith_Cooking_7", "unict_Painter_40"])
    with pytest.raises(InputError) as e:
        clip_refs(_config(ann))
    msg = str(e.value)
    assert str(ann) in msg and "'iiith_Cooking_7'" in msg and "'unict_Painter_40'" in msg
    assert "ego4d.scan_names" in msg and "run_all_data.py" in msg


def test_file_mapping(tmp_path):
    m = tmp_path / "names.json"
    write_scan_names(m, {"iiith_Cooking_7": "iiith_3dscan_001"})
    refs = clip_refs(_config(_ann(tmp_path, ["iiith_Cooking_7"]), str(m)))
    assert refs[0].scan_folder == "iiith_3dscan_001"
    with pytest.raises(InputError, match="'unict_Baker_32' have no scan folder in .*names.json"):
        clip_refs(_config(_ann(tmp_path, ["unict_Baker_32"]), str(m)))


@pytest.mark.parametrize("table, match", [
    ({"a b": "x", "c": "x"}, "both map to folder 'x'"),
    ({"a": "has space"}, "unsafe scan folder"),
    ({"a": "../up"}, "unsafe scan folder"),
    ({"a/b": "x"}, "unsafe scan_uid"),
    ({"a": 3}, "must be a string"),
    ([], "non-empty JSON object"),
])
def test_bad_mapping_files(tmp_path, table, match):
    m = tmp_path / "names.json"
    m.write_text(json.dumps(table))
    with pytest.raises(InputError, match=match) as e:
        read_scan_names(m)
    assert str(m) in str(e.value)


def test_unreadable_mapping(tmp_path):
    with pytest.raises(InputError, match="scan name mapping does not exist"):
        read_scan_names(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        read_scan_names(tmp_path / "bad.json")

