"""The conda envs' pip parts as they stand: one pycolmap per env, torch only where a backend needs
it, and each configurable rule's env following its backend. (CI also installs envs/cpu.yaml's pip
list into a fresh venv and runs a rule from it: .ci/env_check.py.)"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from vq3d.config import load_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".ci"))
import env_check  # noqa: E402

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def names(reqs) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r.strip(), maxsplit=1)[0].lower() for r in reqs}


def env_dists(env: str) -> set[str]:
    """Distributions an env's pip list asks for: its items plus vq3d's deps and the extras it names."""
    out = set()
    for item in env_check.pip_list(env, {}):
        m = re.match(r"-e \.\./(?:\[([\w,]+)\])?$", item)
        if m:
            out |= names(PROJECT["dependencies"])
            for extra in (m.group(1) or "").split(","):
                if extra:
                    out |= names(PROJECT["optional-dependencies"][extra])
        elif not item.startswith("-"):
            out |= names([item])
    return out


@pytest.mark.parametrize("env", sorted(p.stem for p in (REPO / "envs").glob("*.yaml")))
def test_one_pycolmap_per_env(env):
    dists = env_dists(env)
    assert len(dists & {"pycolmap", "pycolmap-cuda12"}) == 1, dists


def test_base_install_has_no_torch_pycolmap_or_unused_packages():
    base = names(PROJECT["dependencies"])
    assert not base & {"torch", "pycolmap", "pycolmap-cuda12", "pandas", "tqdm",
                       "snakemake-executor-plugin-slurm"}  # the plugin pulls pandas
    assert "imageio-ffmpeg" in base
    assert "torch" in env_dists("gpu") and "torch" not in env_dists("cpu")
    assert {"torch", "torchvision", "einops", "imagesize"} <= env_dists("vq2d-detectron2")


def env_of(rule_var: str, overrides: dict) -> str:
    """Evaluate rules/common.smk's env choice (e.g. DETECT_ENV) for a config."""
    text = (REPO / "rules" / "common.smk").read_text()
    m = re.search(rf"^{rule_var} = (\(.*?\)|.*?)$", text, flags=re.M | re.S)
    return eval(m.group(1), {"config": load_config(overrides=overrides)})


@pytest.mark.parametrize("var,overrides,env", [
    ("DETECT_ENV", {}, "../envs/gpu.yaml"),
    ("DETECT_ENV", {"detect": {"backend": "siamrcnn"}}, "../envs/vq2d-detectron2.yaml"),
    ("PREDICT_ENV", {}, "../envs/cpu.yaml"),
    ("PREDICT_ENV", {"predict": {"depth": "mono"}}, "../envs/gpu.yaml"),
])
def test_env_follows_the_backend(var, overrides, env):
    assert env_of(var, overrides) == env
    rule = "detect" if var == "DETECT_ENV" else "predict"
    block = (REPO / "rules" / f"{rule}.smk").read_text().split(f"rule {rule}:")[1].split("\nrule ")[0]
    assert re.search(rf"conda:\s*\n\s*{var}\b", block)
    assert (REPO / "rules" / env).resolve().is_file()


def test_detectron2_is_built_after_torch_without_isolation():
    post = (REPO / "envs" / "vq2d-detectron2.post-deploy.sh").read_text()
    assert "--no-build-isolation" in post and "detectron2" in post
    assert "torch" in names(env_check.pip_list("vq2d-detectron2", {}))
