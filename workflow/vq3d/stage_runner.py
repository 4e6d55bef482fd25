"""Runs one stage function for a Snakemake rule: named inputs, outputs and params become keyword
arguments, the rule's log file receives the stage's logging, and a bad-input error becomes one
clear line (and a failed job) rather than a traceback."""

from __future__ import annotations

import importlib
import logging
import sys

from .errors import InputError
from .ids import UnsafeIdError

log = logging.getLogger("vq3d")


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def call_stage(target: str, kwargs: dict):
    """Call 'package.module:function' with kwargs; InputError/UnsafeIdError exit with one line."""
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return func(**kwargs)
    except (InputError, UnsafeIdError) as exc:
        log.error("bad input: %s", exc)
        sys.exit(1)


def run_from_snakemake(smk) -> None:
    setup_logging(smk.log[0] if len(smk.log) else None)
    kwargs = {**dict(smk.input.items()), **dict(smk.output.items()), **dict(smk.params.items())}
    target = kwargs.pop("stage")
    log.info("rule %s: %s(%s)", smk.rule, target, ", ".join(sorted(kwargs)))
    call_stage(target, kwargs)
