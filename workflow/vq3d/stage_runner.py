"""Runs one stage function for a Snakemake rule: named inputs, outputs and params become keyword
arguments, the rule's log file receives the stage's logging, and an expected failure becomes one
clear line (and a failed job) rather than a traceback.

Expected failures (`expected_failure`): any `vq3d.errors.VQ3DError` (bad input, a failed
download, ffmpeg refusing a file, a missing optional
dependency: its `kind` says which), and an input file or folder that does
not exist, is of the wrong kind or cannot be read (an OSError naming a path under one of the
stage's inputs or params), and a missing optional module (pycolmap, torch, detectron2: the
line says which extra or env brings it). Anything else is a bug: it is logged with its full traceback, into the rule's log
as well as stderr, so it stays debuggable from the log alone."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys

from .errors import VQ3DError

log = logging.getLogger("vq3d")

# Optional packages (pyproject extras) and how to get them.
MISSING_HINT = {
    "pycolmap": "pip install 'vq3d[cpu]' (or 'vq3d[cuda]' for GPU SIFT), or run with --use-conda",
    "torch": "pip install torch==2.13.0 (CPU) or 'vq3d[mono]' / 'vq3d[siamrcnn]', or run with "
             "--use-conda",
    "torchvision": "pip install 'vq3d[siamrcnn]', or run with --use-conda (envs/vq2d-detectron2.yaml)",
    "detectron2": "detectron2 is built from source by envs/vq2d-detectron2.yaml (--use-conda)",
}


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def one_line(text: str) -> str:
    """A possibly multi-line message on one line ("head: a; b" for "head:\\n  a\\n  b")."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return lines[0] + " " + "; ".join(lines[1:])
    return "; ".join(lines)


def _paths(values) -> list[str]:
    """Absolute forms of every path-like value (str, PathLike, or lists of them)."""
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out += _paths(v)
        elif isinstance(v, (str, os.PathLike)) and str(v):
            out.append(os.path.abspath(os.fspath(v)))
    return out


def _under(filename, roots: list[str]) -> bool:
    if not filename:
        return False
    f = os.path.abspath(os.fsdecode(filename))
    return any(f == r or f.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def expected_failure(exc: BaseException, input_paths=()) -> tuple[str, str] | None:
    """(kind, one-line message) when `exc` is an expected failure, None when it is a bug.

    A FileNotFoundError counts only when the missing file is (under) one of `input_paths`: a
    missing file the code itself should have made is a bug and keeps its traceback."""
    if isinstance(exc, VQ3DError):
        return exc.kind, one_line(str(exc))
    if isinstance(exc, FileNotFoundError) and _under(exc.filename, _paths(input_paths)):
        return "bad input", f"{exc.filename}: does not exist"
    if isinstance(exc, IsADirectoryError) and _under(exc.filename, _paths(input_paths)):
        return "bad input", f"{exc.filename}: is a folder, expected a file"
    if isinstance(exc, NotADirectoryError) and _under(exc.filename, _paths(input_paths)):
        return "bad input", f"{exc.filename}: is a file, expected a folder"
    if isinstance(exc, PermissionError) and _under(exc.filename, _paths(input_paths)):
        return "bad input", f"{exc.filename}: permission denied"
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in MISSING_HINT:
        name = exc.name.split(".")[0]
        return "missing dependency", f"{name} is not installed: {MISSING_HINT[name]}"
    return None


def call_stage(target: str, kwargs: dict, inputs=None):
    """Call 'package.module:function' with kwargs. An expected failure (see module doc) is logged
    as one line and exits 1; a bug is logged with its traceback and exits 1. `inputs`: the
    values that name input files or folders (default: every keyword argument)."""
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return func(**kwargs)
    except Exception as exc:  # noqa: BLE001 - reported, then the job fails either way
        known = expected_failure(exc, (kwargs if inputs is None else inputs).values())
        if known is None:
            log.exception("%s failed with an unexpected error (a bug: please report it with this "
                          "log)", target)
        else:
            log.error("%s: %s", *known)
        sys.exit(1)


def stage_function(stage):
    module, func = stage.func.split(":")
    return getattr(importlib.import_module(module), func)


def stage_kwargs(stage, named: dict) -> dict:
    """The keyword arguments of `stage`'s function from a job's named inputs, outputs and params:
    all of them but the dependency-only inputs (`Stage.deps`)."""
    return {k: v for k, v in named.items() if k not in stage.deps}


def run_from_snakemake(smk) -> None:
    """Entry of every rule (rules/scripts/run_stage.py): the rule's stage from vq3d.stages."""
    from .stages import STAGES, complete_conf

    setup_logging(smk.log[0] if len(smk.log) else None)
    stage = STAGES[smk.rule]
    named = {**dict(smk.input.items()), **dict(smk.output.items()), **dict(smk.params.items())}
    kwargs = stage_kwargs(stage, named)
    if "conf" in kwargs:  # the rule records its silent keys only off their default
        kwargs["conf"] = complete_conf(smk.rule, kwargs["conf"])
    if "threads" in inspect.signature(stage_function(stage)).parameters:
        kwargs["threads"] = smk.threads  # the rule's threads: no more than Snakemake granted
    inputs = {k: v for k, v in {**dict(smk.input.items()), **dict(smk.params.items())}.items()
              if k != "conf"}
    log.info("rule %s: %s(%s)", smk.rule, stage.func, ", ".join(sorted(kwargs)))
    call_stage(stage.func, kwargs, inputs=inputs)
