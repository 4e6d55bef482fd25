"""`vq3d <stage> ...`: one subcommand per stage, each the thin front of the same stage function the
Snakemake rule calls. Stage modules are imported only when their subcommand runs, so `vq3d --help`
stays fast and a missing optional dependency only affects its own stage."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import InputError
from .ids import UnsafeIdError
from .stage_runner import setup_logging

# subcommand -> (module providing add_arguments(parser) and run(args), one-line help)
SUBCOMMANDS = {
    "synth": ("vq3d.synth.generate", "generate the synthetic egocentric benchmark"),
    "download": ("vq3d.download", "fetch Ego4D clips/videos/annotations with the ego4d CLI"),
    "frames": ("vq3d.frames", "cut a clip and extract its frames at the clip fps"),
    "detect": ("vq3d.detect", "score a clip's frames against each visual crop and pick peaks"),
    "pose-sfm": ("vq3d.pose.sfm", "SfM of a clip's frames with the scan's intrinsics"),
    "pose-register": ("vq3d.pose.register", "Sim(3) of SfM sub-models to the scan frame"),
    "pose-pnp": ("vq3d.pose.pnp", "PnP relocalization of clip frames against the scan"),
    "pose-merge": ("vq3d.pose.merge", "merge SfM and PnP poses into the clip's pose JSON"),
    "predict": ("vq3d.predict", "lift peak detections to 3D and aggregate per query"),
    "submission": ("vq3d.predict.submission", "write the challenge submission file"),
    "evaluate": ("vq3d.evaluate", "L2, angle, Succ, Succ*, QwP of predictions against annotations"),
    "validate-config": ("vq3d.config", "check a config file against the schema"),
    "status": ("vq3d.slurm.status", "per clip: which stages are done, running, failed, missing"),
    "launch": ("vq3d.slurm.launch", "run the Snakemake controller as a self-resubmitting Slurm job"),
}


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
            module.add_arguments(sp)
            sp.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    setup_logging(level=10 if args.verbose else 20)
    try:
        return args._run(args) or 0
    except (InputError, UnsafeIdError) as exc:
        print(f"vq3d {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
