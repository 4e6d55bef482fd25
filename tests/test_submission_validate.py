"""`vq3d validate-submission`: EgoLoc's real scored test submission passes against the challenge
template; broken copies fail with the query named; our writer emits the template's header."""

import copy
import json
import subprocess
import sys

import pytest

from vq3d.formats import fill_submission, validate_submission
from vq3d.formats.submission import HEADER, validate

TEMPLATE = "egoloc/data/metadata/vq3d_test_unannotated_template.json"
EGO4D_TEMPLATE = "ego4d/VQ3D/data/vq3d_test_unannotated_template.json"
SCORED = "egoloc/data/vq3d_results/egoloc_test_mf_weighted2d_test.json"


@pytest.fixture
def real(anchors):
    return json.loads((anchors / SCORED).read_text()), json.loads((anchors / TEMPLATE).read_text())


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "vq3d", "validate-submission", *map(str, args)],
                          capture_output=True, text=True)


def test_egoloc_scored_submission_is_valid(anchors):
    for template in (TEMPLATE, EGO4D_TEMPLATE):  # the two copies hold the same queries
        check = validate_submission(anchors / SCORED, anchors / template)
        assert check.ok, check.problems[:3]
        assert (check.n_queries, check.n_world, check.n_pose) == (264, 259, 239)
    out = _cli(anchors / SCORED, "--template", anchors / TEMPLATE)
    assert out.returncode == 0 and "valid submission, 264 queries" in out.stdout


def _first_query(sub):
    ann = sub["videos"][0]["clips"][0]["annotations"][0]
    qset = sorted(ann["query_sets"])[0]
    return sub["videos"][0]["clips"][0]["clip_uid"], qset, ann["query_sets"]


@pytest.mark.parametrize("breakage,message", [
    (lambda qs, q: qs.pop(q), "is missing"),
    (lambda qs, q: qs[q].update(pred_3d_vec_world=[1.0, float("nan"), 2.0]), "non-finite"),
    (lambda qs, q: qs[q].update(pred_3d_vec_world=[1.0, 2.0]), "list of 3 numbers"),
    (lambda qs, q: qs[q].update(query_frame_pose=qs[q]["query_frame_pose"][:3]), "4×4"),
    (lambda qs, q: qs[q].update(pred_3d_vec_query_frame=["1", 2, 3]), "non-number"),
    (lambda qs, q: qs[q].pop("query_frame_pose"), "query_frame_pose is missing"),
])
def test_broken_submission_names_the_query(real, tmp_path, breakage, message):
    sub, template = copy.deepcopy(real[0]), real[1]
    clip, qset, qs = _first_query(sub)
    breakage(qs, qset)
    check = validate(sub, template)
    assert not check.ok and len(check.problems) == 1
    assert message in check.problems[0]
    assert clip in check.problems[0] and f"query set {qset}" in check.problems[0]
    if message == "non-finite":  # the CLI once: NaN is written as NaN, as Python's json would
        p = tmp_path / "broken.json"
        p.write_text(json.dumps(sub))
        out = _cli(p, "--template", _tmpl(tmp_path, template))
        assert out.returncode == 1 and clip in out.stderr and "NOT a valid submission" in out.stderr


def _tmpl(tmp_path, template):
    t = tmp_path / "template.json"
    t.write_text(json.dumps(template))
    return t


def test_header_and_extra_query(real):
    sub = copy.deepcopy(real[0])
    del sub["challenge"]
    sub["videos"][0]["clips"][0]["annotations"][0]["query_sets"]["99"] = {
        k: None for k in ("pred_3d_vec_world", "pred_3d_vec_query_frame", "query_frame_pose")}
    problems = validate(sub, real[1]).problems
    assert any(p.startswith("challenge must be 'ego4d_vq3d_challenge'") for p in problems)
    assert any("query set 99) is not in the template" in p for p in problems)


def test_fill_submission_writes_the_template_header(anchors):
    # the episodic-memory copy of the template lacks the header; the submission still carries it
    raw = json.loads((anchors / EGO4D_TEMPLATE).read_text())
    sub = fill_submission(raw, {})
    assert list(sub)[:2] == ["version", "challenge"] and {k: sub[k] for k in HEADER} == HEADER
    check = validate(sub, raw)
    assert check.ok and (check.n_queries, check.n_world) == (264, 0)
