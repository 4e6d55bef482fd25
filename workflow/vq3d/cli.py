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

# subcommand -> (module providing add_arguments(parser) and run(args), one-line help); a stage
# module without them gets one --option per parameter of its main() (add_signature_arguments)
SUBCOMMANDS = {
    "synth": ("vq3d.synth.generate", "generate the synthetic egocentric benchmark"),
    "download": ("vq3d.download", "fetch Ego4D clips/videos, annotations or 3d scans with the ego4d CLI"),
    "serve-replica": ("vq3d.synth.serve", "serve an Ego4D-layout replica from a local S3 for the ego4d CLI"),
    "frames": ("vq3d.frames", "cut a clip and extract its frames at the clip fps"),
    "detect": ("vq3d.detect", "score a clip's frames against each visual crop and pick peaks"),
    "scan-refs": ("vq3d.scan.refs", "render a Matterport scan's reference views and geo renders from its mesh"),
    "pose-sfm": ("vq3d.pose.sfm", "SfM of a clip's frames with the scan's intrinsics"),
    "pose-register": ("vq3d.pose.register", "Sim(3) of SfM sub-models to the scan frame"),
    "pose-pnp": ("vq3d.pose.pnp", "PnP relocalization of clip frames against the scan"),
    "pose-merge": ("vq3d.pose.merge", "merge SfM and PnP poses into the clip's pose JSON"),
    "predict": ("vq3d.predict", "lift peak detections to 3D and aggregate per query"),
    "submission": ("vq3d.predict.submission", "write the challenge submission file"),
    "validate-submission": ("vq3d.predict.validate",
                            "check a submission against the challenge template"),
    "evaluate": ("vq3d.evaluate", "L2, angle, Succ, Succ*, QwP of predictions against annotations"),
    "finalize": ("vq3d.finalize", "after a --keep-going run: submission (failed clips null), metrics over all queries, failed-clip list"),
    "check": ("vq3d.check", "preflight a real configuration: annotations, scans, intrinsics, videos, mappings"),
    "validate-config": ("vq3d.config", "check a config file against the schema"),
    "status": ("vq3d.slurm.status", "per clip: which stages are done, running, failed, missing"),
    "launch": ("vq3d.slurm.launch", "run the Snakemake controller as a self-resubmitting Slurm job"),
}


# Config section a stage's `conf` comes from, for stages whose options are read from main()'s
# signature (modules without add_arguments/run of their own).
CONF_SECTION = {"vq3d.pose": "pose", "vq3d.predict": "predict", "vq3d.detect": "detect",
                "vq3d.frames": "frames", "vq3d.scan": "scan_refs"}
# Keyword arguments that only declare a Snakemake dependency: not options.
_SNAKEMAKE_ONLY = {"scans"}


def _section(module_name: str) -> str:
    return next((sec for prefix, sec in CONF_SECTION.items()
                 if module_name == prefix or module_name.startswith(prefix + ".")), "")


def add_signature_arguments(parser: argparse.ArgumentParser, func, section: str) -> None:
    """One --option per parameter of the stage function `func` (the rule's input, output and
    param names); `conf` becomes --config, whose `section` is used (defaults: the schema's)."""
    for name, param in inspect.signature(func).parameters.items():
        if name in _SNAKEMAKE_ONLY:
            continue
        if name == "conf":
            parser.add_argument("--config", metavar="CONFIG_YAML",
                                help=f"config file whose '{section}' section is used "
                                     "(default: the schema's defaults)")
            continue
        required = param.default is inspect.Parameter.empty
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, required=required,
                            metavar=name.upper(), default=None if required else param.default)


def signature_runner(func, section: str):
    def run(args: argparse.Namespace) -> int:
        from .config import load_config

        kwargs = {}
        for name in inspect.signature(func).parameters:
            if name == "conf":
                kwargs["conf"] = load_config(args.config)[section]
            elif name not in _SNAKEMAKE_ONLY:
                kwargs[name] = getattr(args, name)
        func(**kwargs)
        return 0
    return run


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("vq3d"):
            return None  # stage not built in this version
        raise


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vq3d", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Only the chosen subcommand's module is imported; the others are listed by name.
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = _load(module_name)
            if module is None:
                parser.error(f"the '{name}' stage is not available in this installation")
            if hasattr(module, "add_arguments"):
                module.add_arguments(sp)
                sp.set_defaults(_run=module.run)
            else:
                add_signature_arguments(sp, module.main, _section(module_name))
                sp.set_defaults(_run=signature_runner(module.main, _section(module_name)))
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
