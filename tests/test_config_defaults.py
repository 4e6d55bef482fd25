"""#12.5: the schema (workflow/vq3d/schemas/config.schema.yaml) is the only source of defaults.
No module of workflow/vq3d reads a config key with a fallback (`conf.get("key", 0.5)`,
`setdefault`, `pop(key, default)`) or keeps a `*DEFAULTS` table; stages get the validated config,
CLI tools their options through vq3d.config.tool_options (`$defs` of the schema).

Checked on the syntax tree, per function: a name is config when it is a parameter called conf,
config, cfg, options or *_conf, or is assigned from a subscript, attribute or call of one
(`sfm = conf["sfm"]`, `c = dict(conf)`, `{**conf["peaks"], ...}`); `.get(key, <literal>)` on
such a value is a fallback."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "workflow" / "vq3d"
CONFIG_PARAM = re.compile(r"^(conf|config|cfg|options|\w+_conf)$")


def _is_literal(node) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is not None  # .get(key) / .get(key, None): no default invented
    if isinstance(node, ast.UnaryOp):
        return _is_literal(node.operand)
    return isinstance(node, (ast.List, ast.Dict, ast.Tuple, ast.Set))


def _root(node):
    while isinstance(node, (ast.Subscript, ast.Attribute, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _derives(node, names: set[str]) -> bool:
    """`node` is (a part or a copy of) a config value: a name, its subscripts and attributes,
    dict(...)/copy/deepcopy of one, a dict literal unpacking one, either branch of an if."""
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, (ast.Subscript, ast.Attribute)):
        return _derives(node.value, names)
    if isinstance(node, ast.Call):
        f = node.func
        fname = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        if fname == "copy" and isinstance(f, ast.Attribute) and _derives(f.value, names):
            return True
        return fname in ("dict", "deepcopy", "copy") and any(_derives(a, names) for a in node.args)
    if isinstance(node, ast.Dict):
        return any(k is None and _derives(v, names) for k, v in zip(node.keys, node.values))
    if isinstance(node, ast.IfExp):
        return _derives(node.body, names) or _derives(node.orelse, names)
    return False


def fallbacks(source: str, filename: str = "<src>") -> list[tuple[int, str]]:
    tree = ast.parse(source, filename)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(getattr(node, "value", None), ast.Dict):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id.upper().endswith("DEFAULTS"):
                    found.append((node.lineno, f"{t.id} = {{...}}"))
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        args = fn.args
        tainted = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs] if CONFIG_PARAM.match(a.arg)}
        body = fn.body if isinstance(fn.body, list) else [fn.body]
        changed = True
        while changed:  # names assigned from config are config (sections, copies)
            changed = False
            for node in (n for b in body for n in ast.walk(b)):
                if isinstance(node, ast.Assign) and _derives(node.value, tainted):
                    for t in node.targets:
                        for name in (n.id for n in ast.walk(t) if isinstance(n, ast.Name)):
                            if name not in tainted:
                                tainted.add(name)
                                changed = True
        for node in (n for b in body for n in ast.walk(b)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("get", "setdefault", "pop") and len(node.args) >= 2 \
                    and _root(node.func.value) in tainted and _is_literal(node.args[1]):
                found.append((node.lineno, ast.unparse(node)))
    return sorted(set(found))


def test_no_config_fallbacks_in_the_package():
    hits = [f"vq3d/{p.relative_to(PKG)}:{line}: {what}"
            for p in sorted(PKG.rglob("*.py")) for line, what in fallbacks(p.read_text(), str(p))]
    assert not hits, "defaults belong in config.schema.yaml, not in code:\n" + "\n".join(hits)


@pytest.mark.parametrize("src, n", [
    ("def f(conf):\n    return conf.get('top_k', 5)\n", 1),
    ("def f(conf):\n    sfm = conf['sfm']\n    return sfm.get('min_model_size', 3)\n", 1),
    ("def f(config):\n    c = dict(config['pose'])\n    c.setdefault('pnp', True)\n", 1),
    ("def f(detect_conf):\n    return detect_conf['peaks'].get('method', 'vq2d')\n", 1),
    ("REPLICA_DEFAULTS = {'seed': 0}\n", 1),
    ("def f(conf):\n    return conf.get('precomputed')\n", 0),        # no default invented
    ("def f(raw):\n    return raw.get('videos', [])\n", 0),          # a JSON document, not config
    ("def f(conf, table):\n    return table.get(conf['k'], 0)\n", 0),  # keyed by a config value
    ("def f(conf):\n    out = run(conf['top_k'])\n    return out.get('a', [])\n", 0),  # a result
    ("def f(conf):\n    p = {**conf['peaks'], 'x': 1}\n    return p.get('distance', 25)\n", 1),
])
def test_the_check_sees_fallbacks(src, n):
    assert len(fallbacks(src)) == n, fallbacks(src)
