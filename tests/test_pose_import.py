"""Starting from shared pose files (ego4d.precomputed.poses) instead of our own posing."""

import json

import numpy as np
import pytest
import yaml

from vq3d.errors import InputError
from vq3d.formats.poses import ClipPoses, read_poses, write_poses
from vq3d.pose.imported import main

from test_workflow import ego4d_config, job_counts, snakemake


def _frames(tmp_path, n):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(n):
        (frames / f"color_{i:07d}.jpg").write_bytes(b"jpg")
    return frames


def _poses(n, good):
    cam_from_world = np.tile(np.hstack([np.eye(3), [[1.0], [2.0], [3.0]]]), (n, 1, 1))
    return ClipPoses(np.array(good), cam_from_world)


def test_import_from_a_file_of_all_clips(tmp_path):
    source = tmp_path / "all_poses.json"
    write_poses(source, {"clip-a": _poses(3, [True, False, True]), "clip-b": _poses(2, [True, True])})
    main(_frames(tmp_path, 3), str(source), tmp_path / "p.json", tmp_path / "s.json", "clip-a")
    clip = read_poses(tmp_path / "p.json")["clip-a"]
    assert clip.good.tolist() == [True, False, True]
    assert np.allclose(clip.world_from_cam(0)[:, 3], [-1, -2, -3])
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["posed"] == {"precomputed": 2, "none": 1}


def test_import_from_a_folder_and_errors(tmp_path):
    folder = tmp_path / "poses"
    folder.mkdir()
    write_poses(folder / "clip-a.json", {"clip-a": _poses(5, [True] * 5)})
    frames = _frames(tmp_path, 3)
    with pytest.raises(InputError, match="clip clip-a has 5 poses but 3 frames .*one-frame") as err:
        main(frames, str(folder), tmp_path / "p.json", tmp_path / "s.json", "clip-a")
    assert "clip-a.json" in str(err.value)
    with pytest.raises(InputError, match="clip-z not found"):
        main(frames, str(folder), tmp_path / "p.json", tmp_path / "s.json", "clip-z")
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("in_file,frames", [(2402, 2401), (2400, 2401)])
def test_one_frame_convention_difference_is_absorbed(tmp_path, in_file, frames):
    """A 480 s clip: Ego4D's rule gives 2401 frames (end frame included); a pose file made from a
    half-open cut has 2400, one counting a frame past the end 2402: trimmed or padded, logged."""
    source = tmp_path / "all.json"
    good = [True] * (in_file - 1) + [True]
    write_poses(source, {"clip-a": _poses(in_file, good)})
    main(_frames(tmp_path, frames), str(source), tmp_path / "p.json", tmp_path / "s.json", "clip-a")
    clip = read_poses(tmp_path / "p.json")["clip-a"]
    assert len(clip) == frames and clip.good[:min(in_file, frames)].all()
    assert clip.good[-1] == (in_file > frames)  # the padded entry has no pose
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["poses_in_file"] == in_file and summary["frames"] == frames
    assert ("dropped" if in_file > frames else "appended") in summary["count_adjusted"]


@pytest.mark.anchors
def test_dry_run_with_precomputed_poses_replaces_posing(repo, tmp_path, anchors):
    config = ego4d_config(anchors, precomputed={"poses": str(tmp_path / "poses")})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(repo, tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"))
    assert run.returncode == 0, run.stdout + run.stderr
    counts = job_counts(run.stdout)
    assert counts["pose_import"] == 44 and "pose_merge" not in counts and "pose_pnp" not in counts
