"""#12.3: vq3d.formats owns every file format. Outside workflow/vq3d/formats/, no module reads or
writes JSON, CSV, YAML or text files itself: it calls the format's reader/writer. Checked on the
syntax tree (a string search would miss `from json import load` and flag comments), with a short
allow-list of files that are not a project format, each with its reason."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "workflow" / "vq3d"

# Calls that read or write a file's content: attribute names on any object ...
FILE_METHODS = {"read_text", "write_text", "read_bytes", "write_bytes", "savetxt", "loadtxt",
                "genfromtxt"}
# ... functions of these modules (json.loads/dumps work on strings and stay allowed) ...
MODULE_CALLS = {"json": {"load", "dump"}, "csv": {"reader", "writer", "DictReader", "DictWriter"},
                "yaml": {"load", "safe_load", "dump", "safe_dump"}, "pickle": {"load", "dump"},
                "np": {"load", "save", "savez", "savez_compressed"}}
# `x.open(...)` opens a file unless x is one of these (archives and databases, not file content)
OPEN_OK = {"tarfile", "pycolmap.Database"}
# ... and the writers and loaders the formats are built on.
PRIVATE_IMPORTS = {"vq3d.formats._common": {"load_json", "dump_json"},
                   "vq3d.atomic": {"write_json", "write_text"}}

# (module path under vq3d/, what) -> why it is not a project file format.
ALLOWED = {
    ("atomic.py", "write_text"): "the atomic writer every format writer goes through",
    ("atomic.py", "json.dump"): "the atomic writer every format writer goes through",
    ("atomic.py", "open"): "the atomic writer every format writer goes through",
    ("config.py", "read_text"): "config.yaml and its schema: vq3d.config is the config's one owner (#12.5)",
    ("config.py", "yaml.load"): "the schema, loaded by vq3d.config (the config's one owner)",
    ("config.py", "yaml.safe_load"): "config.yaml, loaded by vq3d.config (the config's one owner)",
    ("config.py", "yaml.safe_dump"): "`vq3d config --print` to stdout, not a file",
    ("slurm/status.py", "read_text"): "rule logs, Snakemake's run log and its .snakemake/incomplete "
                                      "markers: Snakemake's files, read to report, never written",
    ("pose/colmap_io.py", "write_text"): "COLMAP's match-pair list, scratch input that pycolmap "
                                         "reads in the same call",
    ("report/metrics_table.py", "vq3d.atomic.write_text"): "the report's HTML page, an end "
                                                           "product for people that nothing reads",
}


def _resolve(module: str | None, level: int, here: Path) -> str:
    if not level:
        return module or ""
    parts = ["vq3d", *here.relative_to(PKG).parent.parts]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([module] if module else []))


def file_io(path: Path) -> list[tuple[int, str]]:
    """(line, what) of every direct file read/write in the module at `path`."""
    tree = ast.parse(path.read_text(), str(path))
    aliases = {}  # local name -> "json.load" etc. for `from json import load`
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = _resolve(node.module, node.level, path)
            for a in node.names:
                if a.name in MODULE_CALLS.get(mod, ()):
                    aliases[a.asname or a.name] = f"{mod}.{a.name}"
                if a.name in PRIVATE_IMPORTS.get(mod, ()):
                    found.append((node.lineno, f"{mod}.{a.name}"))
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id == "open":
                found.append((node.lineno, "open"))
            elif isinstance(f, ast.Name) and f.id in aliases:
                found.append((node.lineno, aliases[f.id]))
            elif isinstance(f, ast.Attribute):
                if f.attr in FILE_METHODS:
                    found.append((node.lineno, f.attr))
                elif f.attr == "open" and ast.unparse(f.value) not in OPEN_OK:
                    found.append((node.lineno, f"{ast.unparse(f.value)}.open"))
                elif isinstance(f.value, ast.Name) and f.attr in MODULE_CALLS.get(f.value.id, ()):
                    found.append((node.lineno, f"{f.value.id}.{f.attr}"))
    return found


def test_only_vq3d_formats_reads_and_writes_files():
    offenders, used = [], set()
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("formats/"):
            continue
        for line, what in file_io(path):
            if (rel, what) in ALLOWED:
                used.add((rel, what))
            else:
                offenders.append(f"vq3d/{rel}:{line}: {what}")
    assert not offenders, ("read/write these through a vq3d.formats reader/writer "
                           "(or allow-list them here with the reason):\n" + "\n".join(offenders))
    assert used == set(ALLOWED), f"allow-list entries no longer needed: {set(ALLOWED) - used}"


def test_the_check_finds_each_kind_of_file_access(tmp_path, monkeypatch):
    # A check that cannot fail is a defect: each pattern is found, string JSON is not.
    mod = PKG / "detect" / "_ownership_probe.py"
    src = ("import json, csv\nimport numpy as np\nfrom json import load as jl\nfrom pathlib import Path\n"
           "from ..atomic import write_json\nfrom ..formats._common import load_json\n"
           "json.load(open('a'))\njl(fh)\nPath('b').write_text('x')\ncsv.writer(fh)\n"
           "np.savetxt('c', [])\njson.loads('{}')\njson.dumps({})\nPath('d').open()\nnp.load('e')\n"
           "import tarfile\ntarfile.open('f')\n")
    mod.write_text(src)
    try:
        got = sorted(what for _, what in file_io(mod))
    finally:
        mod.unlink()
    assert got == sorted(["json.load", "open", "json.load", "write_text", "csv.writer", "savetxt",
                          "Path('d').open", "np.load",
                          "vq3d.atomic.write_json", "vq3d.formats._common.load_json"])
