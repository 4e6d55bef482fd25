"""Check a conda env's pip part without conda (no channel is reachable here): install the env's pip
list into a fresh venv, import the stage of every rule that uses the env, and (cpu) run one rule,
`synth`, through Snakemake from that venv with a tiny config.

    python3 .ci/env_check.py cpu [--keep DIR] [--no-run]
    python3 .ci/env_check.py gpu
    python3 .ci/env_check.py vq2d-detectron2 --torch torch==2.14.1 --torchvision torchvision==0.29.1

The CUDA index of torch is unreachable here: torch (and torchvision) pins are replaced by local
wheels (--torch, --torchvision; default the CPU torch==2.13.0). pycolmap-cuda12 installs as it
is (its wheel carries its CUDA runtime and imports without a GPU). Checked: the install succeeds,
no two installed distributions provide the same top-level module (pycolmap and pycolmap-cuda12
would), and the stage of every rule that uses the env imports. An env with a post-deploy script
runs it too (with VQ3D_DETECTRON2_SRC for a local detectron2 checkout). Stdlib only."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DUPLICATES = """
# Two distributions writing the same non-empty file clobber each other (pycolmap and
# pycolmap-cuda12 both install the pycolmap module); empty namespace markers (nvidia/__init__.py)
# are shared on purpose.
import collections, importlib.metadata as md
owners = collections.defaultdict(set)
for d in md.distributions():
    for f in d.files or []:
        if not f.parts or f.parts[0] in ("..", "bin") or "__pycache__" in f.parts \\
                or f.parts[0].endswith((".dist-info", ".egg-info")) or not f.size:
            continue
        owners[str(f)].add(d.metadata["Name"].lower())
clash = collections.defaultdict(set)
for path, o in owners.items():
    if len(o) > 1:
        clash[path.split("/")[0]] |= o
print("distributions writing the same files:", dict(clash) or "none")
raise SystemExit(1 if clash else 0)
"""
TINY = """\
data_dir: data
results_dir: results
synth: {scenes: 1, clips_per_scene: 1, queries_per_clip: 1, width: 160, height: 120, clip_seconds: 4}
"""


def pip_list(env: str, standins: dict[str, str]) -> list[str]:
    """The items under `- pip:` in envs/<env>.yaml (comments dropped), stand-ins applied."""
    lines = (REPO / "envs" / f"{env}.yaml").read_text().splitlines()
    out, indent = [], None
    for line in lines:
        if indent is None:
            m = re.match(r"^(\s*)- pip:\s*$", line)
            indent = len(m.group(1)) if m else None
            continue
        m = re.match(r"^(\s*)- (.*)$", line)
        if not m or len(m.group(1)) <= indent:
            if line.strip() and not line.strip().startswith("#"):
                break
            continue
        item = re.sub(r"\s+#.*$", "", m.group(2)).strip()
        if "download.pytorch.org" in item:
            continue  # the CUDA wheel index: unreachable here, the local CPU torch stands in
        name = re.split(r"[<>=!~\[ ]", item, maxsplit=1)[0]
        out.append(standins.get(name, item))
    return out


def rule_envs(env: str) -> list[str]:
    """The rules whose conda: directive names envs/<env>.yaml, or a variable
    (DETECT_ENV = "...yaml" if ... else "...yaml") one of whose choices does."""
    found = []
    texts = "\n".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    for smk in sorted((REPO / "rules").glob("*.smk")):
        blocks = re.split(r"^\s*rule (\w+):", smk.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2]):
            conda = re.search(r'conda:\s*\n?\s*(.+)', body)
            if not conda:
                continue
            choice = conda.group(1).strip()
            if re.fullmatch(r"[A-Z_]+", choice):  # an env chosen by config
                m = re.search(rf"^{choice} = ", texts, flags=re.M)
                definition, depth = "", 0
                for line in texts[m.start():].splitlines() if m else []:
                    definition += line + "\n"
                    depth += line.count("(") - line.count(")")
                    if depth <= 0:
                        break
                if f"envs/{env}.yaml" in definition:
                    found.append(name)
            elif f"envs/{env}.yaml" in choice:
                found.append(name)
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("env")
    ap.add_argument("--keep", default=None, help="build the venv here and keep it")
    ap.add_argument("--no-run", action="store_true", help="install and import only")
    ap.add_argument("--venv", default=None, help="install into this existing venv instead of a new one")
    ap.add_argument("--torch", default="torch==2.13.0", help="stands in for the env's CUDA torch")
    ap.add_argument("--torchvision", default=None, help="stands in for the env's torchvision")
    args = ap.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix=f"vq3d-env-{args.env}-"))
    work.mkdir(parents=True, exist_ok=True)
    venv = Path(args.venv) if args.venv else work / "venv"
    t0 = time.monotonic()
    if not args.venv:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    standins = {"torch": args.torch, **({"torchvision": args.torchvision} if args.torchvision else {})}
    items = pip_list(args.env, standins)
    print(f"envs/{args.env}.yaml pip list (stand-ins applied): {items}", flush=True)
    # As conda does: the pip list as a requirements file, pip run from the env file's folder (so
    # -e ../ is the checkout)
    req = work / f"{args.env}.requirements.txt"
    req.write_text("\n".join(items) + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "-U", "-r", str(req)], cwd=REPO / "envs", check=True)
    print(f"installed in {time.monotonic() - t0:.0f} s", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    post = REPO / "envs" / f"{args.env}.post-deploy.sh"
    if post.is_file():
        t1 = time.monotonic()
        subprocess.run(["bash", str(post)], check=True, env=env, cwd=work)
        print(f"{post.name} ran in {time.monotonic() - t1:.0f} s", flush=True)
    subprocess.run([py, "-c", DUPLICATES], check=True, env=env)
    stages = rule_envs(args.env)
    if not stages:
        raise SystemExit(f"no rule uses envs/{args.env}.yaml")
    # each rule's stage function, from vq3d's stage table, imported in the venv
    code = ("import importlib\nfrom vq3d.stages import STAGES\n"
            "for rule in " + repr(sorted(stages)) + ":\n"
            "    mod, fn = STAGES[rule].func.split(':')\n"
            "    getattr(importlib.import_module(mod), fn)\n"
            "import vq3d; print('vq3d from', vq3d.__file__)\n")
    subprocess.run([py, "-c", code], check=True, env=env, cwd=work)
    print(f"imported the stages of {len(stages)} rules: {', '.join(sorted(stages))}", flush=True)
    if not args.no_run and "synth" in stages:
        wd = work / "run"
        shutil.rmtree(wd, ignore_errors=True)
        wd.mkdir()
        (wd / "tiny.yaml").write_text(TINY)
        t1 = time.monotonic()
        res = subprocess.run([str(venv / "bin" / "snakemake"), "-s", str(REPO / "Snakefile"),
                              "--directory", str(wd), "--configfile", str(wd / "tiny.yaml"),
                              "--cores", "2", "--until", "synth"], env=env, cwd=wd,
                             capture_output=True, text=True)
        log = wd / "results" / "logs" / "synth.log"
        if res.returncode != 0:
            print(res.stdout[-4000:], res.stderr[-4000:], sep="\n")
            if log.is_file():
                print(log.read_text()[-4000:])
            raise SystemExit(f"rule synth failed from the envs/{args.env}.yaml venv")
        videos = sorted((wd / "data").rglob("*.mp4"))
        assert videos, "synth wrote no video"
        text = log.read_text() if log.is_file() else ""
        which = re.search(r"ffmpeg: (\S+) \((\w+),", text)
        print(f"rule synth ran from the venv in {time.monotonic() - t1:.0f} s: {len(videos)} video(s); "
              f"ffmpeg {which.group(1) + ' (' + which.group(2) + ')' if which else '?'}", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
