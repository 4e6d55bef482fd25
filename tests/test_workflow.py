"""The workflow's DAG: complete for both dataset kinds, lint-clean, and refusing bad input before
any job runs."""

import json
import re
import subprocess
import sys

import pytest
import yaml
from conftest import vq3d_clip, vq3d_doc, write_doc

STAGES = ["frames", "detect", "pose_sfm", "pose_register", "pose_pnp", "pose_merge", "predict"]


def snakemake(repo, workdir, *args):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def job_counts(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1].split("Reasons:")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def ego4d_config(anchors, split="val", **extra):
    meta = anchors / "egoloc" / "data" / "metadata"
    queries = meta / "vq_val_vq3d.json" if split == "val" else anchors / "egoloc/2d_retrieval/data/vq_test_vq3d.json"
    annotations = meta / ("vq3d_val.json" if split == "val" else "vq3d_test_unannotated_template.json")
    mapping = meta / f"mapping_vq2d_to_vq3d_queries_annotations_{split}.json"
    return {
        "dataset": {"kind": "ego4d", "split": split},
        "ego4d": {
            "annotations": str(annotations),
            "queries": str(queries),
            "mapping": str(mapping),
            "intrinsics": str(anchors / "egoloc/data/precomputed/scan_to_intrinsics_egoloc.json"),
            **extra,
        },
    }


def write_config(tmp_path, config):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_dry_run_synth_lists_every_stage_for_every_clip(repo, tmp_path):
    run = snakemake(repo, tmp_path, "-n", "--configfile", str(repo / "config.yaml"))
    assert run.returncode == 0, run.stderr
    counts = job_counts(run.stdout)
    assert counts["synth"] == 1
    for stage in STAGES:
        assert counts[stage] == 4, (stage, counts)  # 2 scenes x 2 clips
    assert counts["submission"] == counts["evaluate"] == counts["export_peaks"] == 1


@pytest.mark.anchors
def test_dry_run_ego4d_val_anchors_lists_all_44_clips(repo, tmp_path, anchors):
    run = snakemake(repo, tmp_path, "-n", "--configfile", str(write_config(tmp_path, ego4d_config(anchors))))
    assert run.returncode == 0, run.stderr
    counts = job_counts(run.stdout)
    assert counts["download"] == 44
    for stage in STAGES:
        assert counts[stage] == 44, (stage, counts)
    assert counts["evaluate"] == 1
    # one render job per scan, shared by all its clips
    scans = {v["scan_uid"] for v in json.loads((anchors / "egoloc/data/metadata/vq3d_val.json").read_text())["videos"]}
    assert counts["scan_refs"] == len(scans) == 4


@pytest.mark.anchors
def test_dry_run_ego4d_test_split_has_no_evaluation(repo, tmp_path, anchors):
    run = snakemake(repo, tmp_path, "-n", "--configfile",
                    str(write_config(tmp_path, ego4d_config(anchors, split="test"))))
    assert run.returncode == 0, run.stderr
    counts = job_counts(run.stdout)
    assert counts["predict"] == 69 and "evaluate" not in counts
    assert counts["submission"] == 1


def test_rulegraph_dag_and_lint(repo, tmp_path):
    rulegraph = snakemake(repo, tmp_path, "--rulegraph", "--configfile", str(repo / "config.yaml"))
    assert rulegraph.returncode == 0, rulegraph.stderr
    assert rulegraph.stdout.lstrip().startswith("digraph")
    for rule in ["synth", *STAGES, "submission", "evaluate"]:
        assert f'label = "{rule}"' in rulegraph.stdout
    dag = snakemake(repo, tmp_path, "--dag", "--configfile", str(repo / "config.yaml"))
    assert dag.returncode == 0 and "synthclip-0-01-01" in dag.stdout
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr


def test_every_rule_has_log_and_benchmark(repo):
    text = "\n".join(p.read_text() for p in (repo / "rules").glob("*.smk"))
    rules = re.split(r"^\s*rule (\w+):", text, flags=re.M)[1:]
    names = rules[0::2]
    assert len(names) >= 12
    for name, body in zip(names, rules[1::2]):
        assert "log:" in body and "benchmark:" in body, name


def test_unsafe_clip_id_fails_before_any_job(repo, tmp_path):
    annotations = tmp_path / "vq3d_val.json"
    write_doc(annotations, vq3d_doc([("v1", "s1", [vq3d_clip("fine-clip"), vq3d_clip("x; rm -rf ~")])]))
    config = {"dataset": {"kind": "ego4d"},
              "ego4d": {"annotations": str(annotations), "queries": "q.json", "mapping": "m.json",
                        "intrinsics": "i.json"}}
    run = snakemake(repo, tmp_path, "-n", "--configfile", str(write_config(tmp_path, config)))
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert "unsafe clip_uid 'x; rm -rf ~'" in out
    assert "videos[0].clips[1]" in out
    assert "Traceback" not in out


def test_bad_config_fails_with_the_key_named(repo, tmp_path):
    run = snakemake(repo, tmp_path, "-n", "--configfile", str(write_config(tmp_path, {"detect": {"top_k": 0}})))
    assert run.returncode != 0
    assert re.search(r"config key 'detect.top_k' in \S*config.yaml.*: got 0, expected a number >= 1",
                     run.stdout + run.stderr)


@pytest.mark.parametrize("stride, waits", [(1, False), (5, True)])
def test_pnp_waits_for_sfm_only_when_it_reads_it(repo, tmp_path, stride, waits):
    """pose.pnp_check_stride 1: PnP runs beside SfM (in parallel, not rerun with it); k > 1 (the
    default 5): PnP reads the SfM output, so the DAG has the edge."""
    config = yaml.safe_load((repo / "config.yaml").read_text()) or {}
    config.setdefault("pose", {})["pnp_check_stride"] = stride
    dag = snakemake(repo, tmp_path, "--dag", "--configfile", str(write_config(tmp_path, config)))
    assert dag.returncode == 0, dag.stderr[-3000:]
    node = {m[1]: m[2] for m in re.finditer(r'^\s*(\d+)\[label = "(\w+)', dag.stdout, re.M)}
    edges = {(node[a], node[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dag.stdout, re.M)}
    assert ("pose_sfm", "pose_merge") in edges
    assert (("pose_sfm", "pose_pnp") in edges) is waits, sorted(edges)
