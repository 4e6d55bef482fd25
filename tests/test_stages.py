"""One stage table (vq3d.stages.STAGES) behind the rules, the CLI and the docs: every rule of the
workflow has its stage there, and every job's named inputs, outputs and params are exactly what
the stage function takes (dependency-only inputs excepted)."""

from __future__ import annotations

import inspect
import importlib
import subprocess
import sys

import pytest

from vq3d.stages import STAGES, command
from test_config_slices import Workflow, merge  # the in-process Snakemake loader


def named(job, workflow):
    return job.input.keys(), job.output.keys(), job.params.keys(), len(job.log)


def stage_function(rule: str):
    module, func = STAGES[rule].func.split(":")
    return getattr(importlib.import_module(module), func)


def check_jobs(jobs: dict) -> list[str]:
    problems = []
    for (rule, wildcards), (inputs, outputs, params, logs) in jobs.items():
        if rule == "all":
            continue
        if rule not in STAGES:
            problems.append(f"rule {rule} has no stage in vq3d.stages.STAGES")
            continue
        stage = STAGES[rule]
        sig = inspect.signature(stage_function(rule)).parameters
        passed = (set(inputs) | set(outputs) | set(params)) - set(stage.deps)
        if set(stage.deps) & set(sig):
            problems.append(f"{rule}: dependency-only inputs {set(stage.deps) & set(sig)} in the signature")
        extra = passed - set(sig)
        required = {n for n, p in sig.items() if p.default is inspect.Parameter.empty}
        if extra:
            problems.append(f"{rule}: the job passes {sorted(extra)}, not parameters of {stage.func}")
        if required - passed:
            problems.append(f"{rule}: {stage.func} needs {sorted(required - passed)}, not given")
        if logs != 1:
            problems.append(f"{rule}: {logs} log files, expected one")
    return problems


@pytest.fixture(scope="module")
def workflow(repo, tmp_path_factory):
    return Workflow(repo, tmp_path_factory.mktemp("stages"))


def test_every_synth_rule_matches_its_stage_signature(workflow):
    jobs = workflow.map_jobs({}, named)
    assert not check_jobs(jobs), "\n".join(check_jobs(jobs))
    rules = {rule for rule, _ in jobs} - {"all"}
    assert {"synth", "frames", "detect", "pose_sfm", "pose_merge", "predict", "evaluate",
            "report_trajectory", "report_metrics_table", "export_peaks"} <= rules


@pytest.mark.anchors
def test_every_ego4d_rule_matches_its_stage_signature(workflow, anchors):
    from test_workflow import ego4d_config

    seen = set()
    for extra in ({}, {"precomputed": {"poses": str(anchors)}}):
        jobs = workflow.map_jobs(merge(ego4d_config(anchors), {"ego4d": extra}), named)
        assert not check_jobs(jobs), "\n".join(check_jobs(jobs))
        seen |= {rule for rule, _ in jobs}
    seen |= {rule for rule, _ in workflow.map_jobs({}, named)}
    # Every stage in the table is a rule of the workflow, in one configuration or another.
    assert set(STAGES) <= seen, set(STAGES) - seen


def test_cli_lists_every_stage():
    out = subprocess.run([sys.executable, "-m", "vq3d", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    for rule in STAGES:
        assert f"    {command(rule)} " in out or f"    {command(rule)}\n" in out, rule


def test_rule_logs_are_per_rule(repo, workflow):
    """Every per-clip rule logs to logs/<rule>/<clip>.log (vq3d status reads them there)."""
    jobs = workflow.map_jobs({}, lambda job, wf: ([str(p) for p in job.log], dict(job.wildcards_dict)))
    for (rule, _), (logs, wildcards) in jobs.items():
        if rule == "all":
            continue
        clip = wildcards.get("clip")
        want = f"logs/{rule}/{clip}.log" if clip else f"logs/{rule}.log"
        assert logs[0].endswith(want), (rule, logs)


def test_docs_show_the_stage_table(repo):
    from vq3d.stages import markdown_table

    assert markdown_table() in (repo / "docs" / "architecture.md").read_text()
