"""Install time and size of the README's two commands, each in a clean venv.

    python benchmarks/install_size.py [--rev main] [--json out.json]

For a git revision of this repository (default: the working tree), each command's pip part runs
in a fresh `python -m venv` on a clean copy of that revision (git archive, so nothing built in the
checkout is reused): the demo's `pip install [torch==2.13.0] -e .` and the tests'
`pip install [torch==2.13.0] -e ".[test]"`, exactly as that revision's README writes them.
Reported per command: wall time, the venv's size on disk, the number of distributions and the
largest ones. pip's wheel cache is whatever this machine has (the same for every run); the index
is this machine's local mirror, so the time is install work, not download speed."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_pip_commands(readme: str) -> list[str]:
    """The `pip install ...` part of each `pip install ... && ...` line in the README's bash blocks."""
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("pip install"):
                cmds.append(line.split("&&")[0].strip())
    return cmds[:2]


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def largest(site: Path, n: int = 6) -> list[tuple[str, int]]:
    sizes = [(p.name, du(p)) for p in site.iterdir() if p.is_dir() and not p.name.endswith(
        (".dist-info", "__pycache__"))]
    return sorted(sizes, key=lambda kv: -kv[1])[:n]


def measure(src: Path, pip_cmd: str, work: Path) -> dict:
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    base = du(venv)
    args = shlex.split(pip_cmd)[2:]  # after "pip install"
    t0 = time.perf_counter()
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args],
                          cwd=src, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{pip_cmd} failed:\n{proc.stderr[-3000:]}")
    site = next((venv / "lib").glob("python*/site-packages"))
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True).stdout
    names = {d["name"].lower() for d in json.loads(freeze)}
    return {"command": pip_cmd, "wall_s": round(wall, 1), "size_mb": round((du(venv) - base) / 1e6),
            "n_dists": len(names), "torch": "torch" in names, "pandas": "pandas" in names,
            "tqdm": "tqdm" in names,
            "largest_mb": {k: round(v / 1e6) for k, v in largest(site)}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default=None, help="git revision (default: the working tree)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="vq3d-install-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        if args.rev:
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.rev], capture_output=True,
                                     check=True).stdout
        else:  # tracked + untracked-not-ignored files of the working tree
            files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
                                   capture_output=True, check=True).stdout.split(b"\0")
            archive = subprocess.run(["tar", "-c", "-C", str(REPO), "--null", "-T", "-"],
                                     input=b"\0".join(f for f in files if f and (REPO / f.decode()).exists()),
                                     capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        for i, cmd in enumerate(readme_pip_commands((src / "README.md").read_text())):
            work = Path(tmp) / f"run{i}"
            work.mkdir()
            res = measure(src, cmd, work)
            results.append(res)
            print(f"{cmd}\n  {res['wall_s']} s, {res['size_mb']} MB, {res['n_dists']} distributions "
                  f"(torch: {res['torch']}); largest: {res['largest_mb']}", flush=True)
            subprocess.run(["rm", "-rf", str(work)])
    if args.json:
        Path(args.json).write_text(json.dumps({"rev": args.rev or "worktree", "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
