"""`vq3d status`: per clip, which stages are done, running, failed (with the log) or missing.

Sources, all read-only: `snakemake --detailed-summary` (every output of the DAG with its rule and
whether it exists and is current), Snakemake's incomplete markers in .snakemake/incomplete (an
output whose job started and did not finish; the marker holds the Slurm job id) and squeue (is that
job still queued or running?). Per-clip rows come from the log path convention
results/logs/<rule>/<clip>.log, so aggregate rules (submission, evaluate) are left out.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ALIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--directory", type=Path, default=Path("."),
                        help="the workflow's working directory (default: .)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                        help="extra snakemake arguments after --, e.g. -- --configfile my.yaml")


def incomplete_markers(workdir: Path) -> dict[str, str | None]:
    """Output path -> Slurm job id (or None) for outputs Snakemake marked as started, not finished."""
    root = workdir / ".snakemake" / "incomplete"
    markers: dict[str, str | None] = {}
    if not root.is_dir():
        return markers
    for path in root.rglob("*"):
        if not path.is_file() or path.name == "migration_underway":
            continue
        # File persistence: the output path, urlsafe-base64, split into '@'-prefixed chunks.
        encoded = "".join(p.lstrip("@") for p in path.relative_to(root).parts)
        try:
            output = base64.urlsafe_b64decode(encoded).decode()
        except (ValueError, UnicodeDecodeError):
            continue
        try:
            jobid = json.loads(path.read_text() or "{}").get("external_jobid")
        except (json.JSONDecodeError, OSError):
            jobid = None
        markers[output] = str(jobid).split(";")[0] if jobid else None
    return markers


def controller_running(workdir: Path) -> bool:
    """A Snakemake process holds the directory's lock (it may be stale after a SIGKILL)."""
    locks = workdir / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


def alive_slurm_jobs() -> set[str]:
    try:
        out = subprocess.run(["squeue", "-h", "-o", "%i|%T"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    if out.returncode != 0:
        return set()
    return {line.split("|")[0] for line in out.stdout.split() if line.split("|")[-1] in ALIVE}


def detailed_summary(workdir: Path, extra: list[str]) -> list[dict[str, str]]:
    cmd = ["snakemake", "--detailed-summary", "--nolock", "--quiet", "all", *extra]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {workdir}:\n{res.stderr.strip()}")
    lines = [ln for ln in res.stdout.splitlines() if "\t" in ln]
    if not lines or not lines[0].startswith("output_file"):
        raise RuntimeError(f"unexpected --detailed-summary output from {' '.join(cmd)}")
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"))) for ln in lines[1:]]


def stage_states(workdir: Path, rows: list[dict[str, str]], markers: dict[str, str | None],
                 alive: set[str], locked: bool) -> dict[str, dict[str, dict]]:
    """{clip: {rule: {"state": done|running|failed|missing|outdated, "log": path}}}."""
    states: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        rule, output = row["rule"], row["output_file"]
        log = Path(row.get("log-file(s)") or "-")
        if log.parent.name != rule:
            # Not a per-clip rule, or never run (no log recorded yet): fall back to the convention.
            continue
        clip = log.stem
        if output in markers:
            jobid = markers[output]
            running = (jobid in alive) if jobid else locked
            state = "running" if running else "failed"
        elif row["status"] == "ok":
            state = "done"
        elif row["status"] == "missing":
            state = "failed" if (workdir / log).is_file() and (workdir / log).stat().st_size else "missing"
        else:
            state = "outdated"
        # A multi-output job is as far as its least finished output.
        order = ["failed", "running", "missing", "outdated", "done"]
        old = states[clip].get(rule)
        if old is None or order.index(state) < order.index(old["state"]):
            states[clip][rule] = {"state": state, "log": str(log)}
    return dict(states)


def fill_missing_logs(rows: list[dict[str, str]]) -> None:
    """Outputs whose job never ran have no recorded log. Name it by the convention when a path
    part of the output is a clip already known from another log (clips appear in the table once
    any of their stages has run)."""
    logdirs: dict[str, Path] = {}
    clips: set[str] = set()
    for row in rows:
        log = Path(row.get("log-file(s)") or "-")
        if log.parent.name == row["rule"]:
            logdirs[row["rule"]] = log.parent
            clips.add(log.stem)
    for row in rows:
        if (row.get("log-file(s)") or "-") != "-" or row["rule"] not in logdirs:
            continue
        parts = [Path(p).stem for p in Path(row["output_file"]).parts]
        clip = next((p for p in parts if p in clips), None)
        if clip:
            row["log-file(s)"] = str(logdirs[row["rule"]] / f"{clip}.log")


def collect(workdir: Path, extra: list[str] | None = None) -> dict[str, dict[str, dict]]:
    workdir = workdir.resolve()
    rows = detailed_summary(workdir, extra or [])
    fill_missing_logs(rows)
    return stage_states(workdir, rows, incomplete_markers(workdir), alive_slurm_jobs(),
                        controller_running(workdir))


# A logging record at ERROR level (vq3d's stage runner: "<time> ERROR vq3d: bad input: ...") or
# the last line of a traceback ("ValueError: ...").
ERROR_LINE = re.compile(r" (ERROR|CRITICAL) |^\w*(Error|Exception): ")
SLURM_FAILED = re.compile(r"SLURM-job '(\d+)' failed, SLURM status is: '(\w+)'")


def log_error(log: Path | str) -> str | None:
    """The one-line reason of the last error line of a rule log (the stage's own message after
    "ERROR vq3d: ", or a traceback's last line); None when it has none or cannot be read."""
    try:
        text = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [ln for ln in text if ERROR_LINE.search(ln)]
    if not errors:
        return None
    last = errors[-1]
    return (last.split(": ", 1)[-1] if re.search(" (ERROR|CRITICAL) ", last) else last).strip()


def run_failures(logs_dir: Path | str, since: float, snakemake_log=None,
                 workdir: Path | str = ".") -> list[str]:
    """What failed in the run that started at `since` (epoch seconds), one line per failure.

    Stage failures come from the rule logs (`<logs_dir>/**.log` written during this run whose
    text holds an error line: the stage's own one-line reason, e.g. "bad input: <file>: ..."),
    jobs Slurm ended (OOM, TIMEOUT, CANCELLED, NODE_FAIL) from the plugin's lines in the run's
    Snakemake log, with the job's Slurm log. Called by the Snakefile's `onerror`, so the end of
    a failed run names every failure instead of only "Look above for error messages".
    """
    workdir = Path(workdir)
    lines = []
    for log in sorted(Path(workdir, logs_dir).rglob("*.log")):
        try:
            if log.stat().st_mtime < since:
                continue
        except OSError:
            continue
        reason = log_error(log)
        if reason:
            # results_dir may be absolute (outside the working directory): name it as it is
            shown = log.relative_to(workdir) if log.is_relative_to(workdir) else log
            lines.append(f"{shown}: {reason}")
    seen = set()
    # Snakemake passes the run's log file(s): a path or a list of paths.
    smk_logs = [snakemake_log] if isinstance(snakemake_log, (str, Path)) else list(snakemake_log or [])
    for smk_log in (Path(p) for p in smk_logs if p and Path(p).is_file()):
        for match in SLURM_FAILED.finditer(smk_log.read_text(errors="replace")):
            jobid, state = match.groups()
            if jobid in seen:
                continue
            seen.add(jobid)
            slurm_log = next((workdir / ".snakemake" / "slurm_logs").rglob(f"{jobid}.log"), None)
            where = slurm_log.relative_to(workdir) if slurm_log else "no Slurm log found"
            lines.append(f"Slurm job {jobid} ended {state}: {where}")
    return lines


def print_run_failures(logs_dir: Path | str, since: float, snakemake_log=None,
                       stream=None) -> None:
    lines = run_failures(logs_dir, since, snakemake_log)
    if not lines:
        return
    stream = stream or sys.stderr  # looked up per call: sys.stderr may have been replaced since import
    print("\nvq3d: failed in this run (the other jobs went on; fix the cause and rerun, finished "
          "outputs are kept):", file=stream)
    for line in lines:
        print(f"  {line}", file=stream)
    print("  per clip: vq3d status", file=stream)


def format_table(states: dict[str, dict[str, dict]]) -> str:
    rules = sorted({r for per_clip in states.values() for r in per_clip})
    width = max([len("clip")] + [len(c) for c in states])
    lines = ["  ".join([f"{'clip':<{width}}"] + [f"{r:<10}" for r in rules])]
    failures = []
    for clip in sorted(states):
        cells = []
        for rule in rules:
            cell = states[clip].get(rule, {"state": "-"})
            cells.append(f"{cell['state']:<10}")
            if cell["state"] == "failed":
                failures.append(f"  {clip} {rule}: see {cell['log']}")
        lines.append("  ".join([f"{clip:<{width}}"] + cells))
    if failures:
        lines += ["", "failed:"] + failures
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    extra = [a for a in args.snakemake_args if a != "--"]
    try:
        states = collect(args.directory, extra)
    except RuntimeError as exc:
        print(f"vq3d status: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(states, indent=2, sort_keys=True) if args.json else format_table(states))
    failed = any(c["state"] == "failed" for per_clip in states.values() for c in per_clip.values())
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vq3d status", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
