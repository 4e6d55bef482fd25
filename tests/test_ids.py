"""Ids from annotation files become paths and shell words: only safe ones pass."""

import pytest
from conftest import vq3d_clip, vq3d_doc, write_doc

from vq3d.dataset import read_vq3d_clip_refs
from vq3d.ids import UnsafeIdError, check_id, check_scan_id


@pytest.mark.parametrize("uid", ["6c641082-044e-46a7-ad5f-85568119e09e", "synthclip-0-00-01", "a.b_c"])
def test_safe_ids_pass(uid):
    assert check_id(uid, what="clip_uid") == uid


@pytest.mark.parametrize("uid", ["../etc", "a/b", "x y", "", "-rf", "$(rm -rf ~)", "a;b", ".hidden", None, 42, "a..b"])
def test_unsafe_ids_are_rejected(uid):
    with pytest.raises(UnsafeIdError, match="unsafe clip_uid"):
        check_id(uid, what="clip_uid", source="f.json")


def test_scan_ids_allow_spaces_only():
    assert check_scan_id("unict_Scooter mechanic_31") == "unict_Scooter mechanic_31"
    with pytest.raises(UnsafeIdError):
        check_scan_id("scan/../../x")


def test_unsafe_clip_id_in_annotation_file_is_reported_with_its_place(tmp_path):
    path = tmp_path / "vq3d_val.json"
    write_doc(path, vq3d_doc([("v1", "s1", [vq3d_clip("ok-1"), vq3d_clip("../../oops")])]))
    with pytest.raises(UnsafeIdError) as err:
        read_vq3d_clip_refs(path)
    message = str(err.value)
    assert "'../../oops'" in message and "videos[0].clips[1]" in message and "vq3d_val.json" in message
