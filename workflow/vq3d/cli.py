"""`vq3d <stage> ...`: one subcommand per stage, each the thin front of the same stage function the
Snakemake rule calls. Stage modules are imported only when their subcommand runs, so `vq3d --help`
stays fast and a missing optional dependency only affects its own stage."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys

from .stage_runner import expected_failure, setup_logging
from .stages import STAGES, command, config_slice

# Every rule's stage is a subcommand (the stage table, vq3d.stages), plus these tools:
# subcommand -> (module providing add_arguments(parser) and run(args), one-line help).
TOOLS = {
    "serve-replica": ("vq3d.synth.serve", "serve an Ego4D-layout replica from a local S3 for the ego4d CLI"),
    "validate-submission": ("vq3d.predict.validate",
                            "check a submission against the challenge template"),
    "finalize": ("vq3d.finalize", "after a --keep-going run: submission (failed clips null), metrics over all queries, failed-clip list"),
    "check": ("vq3d.check", "preflight a real configuration: annotations, scans, intrinsics, videos, mappings"),
    "validate-config": ("vq3d.config", "check a config file against the schema"),
    "status": ("vq3d.slurm.status", "per clip: which stages are done, running, failed, missing"),
    "launch": ("vq3d.slurm.launch", "run the Snakemake controller as a self-resubmitting Slurm job"),
}
# subcommand -> (module, help, rule or None); a stage module without add_arguments/run of its own
# gets one --option per parameter of its function (add_signature_arguments).
SUBCOMMANDS = {**{command(rule): (s.module, s.help, rule) for rule, s in STAGES.items()},
               **{name: (module, help_text, None) for name, (module, help_text) in TOOLS.items()}}


def add_signature_arguments(parser: argparse.ArgumentParser, func, rule: str) -> None:
    """One --option per parameter of the stage function `func` (the rule's input, output and
    param names); `conf` becomes --config, whose slice for `rule` is used (vq3d.stages)."""
    for name, param in inspect.signature(func).parameters.items():
        if name == "conf":
            parser.add_argument("--config", metavar="CONFIG_YAML",
                                help=f"config file whose keys read by {rule} are used "
                                     "(default: the schema's defaults)")
            continue
        required = param.default is inspect.Parameter.empty
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, required=required,
                            metavar=name.upper(), default=None if required else param.default)


def signature_runner(func, rule: str):
    def run(args: argparse.Namespace) -> int:
        from .config import load_config

        kwargs = {}
        for name in inspect.signature(func).parameters:
            if name == "conf":
                kwargs["conf"] = config_slice(load_config(args.config), rule)
            else:
                kwargs[name] = getattr(args, name)
        func(**kwargs)
        return 0
    return run


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vq3d", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Only the chosen subcommand's module is imported; the others are listed by name.
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text, rule) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            if hasattr(module, "add_arguments"):
                module.add_arguments(sp)
                sp.set_defaults(_run=module.run)
            else:
                func = getattr(module, STAGES[rule].func.split(":")[1])
                add_signature_arguments(sp, func, rule)
                sp.set_defaults(_run=signature_runner(func, rule))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    setup_logging(level=10 if args.verbose else 20)
    try:
        return args._run(args) or 0
    except Exception as exc:
        # Bad input, a missing file the user named, a failed download: one line. A bug: the
        # traceback, as Python prints it.
        known = expected_failure(exc, _given_paths(args))
        if known is None:
            raise
        kind, message = known
        prefix = "" if kind == "bad input" else f"{kind}: "
        print(f"vq3d {args.command}: error: {prefix}{message}", file=sys.stderr)
        return 1


def _given_paths(args: argparse.Namespace) -> list[str]:
    """Every string or path the user gave as an option value (inputs and outputs alike)."""
    out = []
    for value in vars(args).values():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (str, os.PathLike)) and str(v):
                out.append(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
