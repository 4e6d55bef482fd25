"""Configuration: load config.yaml, validate it against the schema, fill defaults.

The same function serves the Snakefile, the CLI and the tests, so a bad key is reported the same
way everywhere: the key's dotted path, the value given, and what was expected."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from .errors import VQ3DError
from .pose.windows import invalid as windows_invalid


class ConfigError(VQ3DError, ValueError):
    """The configuration does not match the schema."""

    kind = "bad input"


def schema_path() -> Path:
    return Path(str(resources.files("vq3d") / "schemas" / "config.schema.yaml"))


def load_schema() -> dict:
    return copy.deepcopy(_schema())


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    # libyaml where present: the schema is read on every workflow load and every CLI call.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(schema_path().read_text(), Loader=loader)


def _explain(error: jsonschema.ValidationError, source: str) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    where = f" in {source}" if source else ""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        parent = key if error.absolute_path else "the top level"
        return (f"unknown config key(s) {', '.join(map(repr, extra))} under {parent}{where}; "
                f"allowed keys: {', '.join(allowed)}")
    expected = {
        "enum": lambda: "one of " + ", ".join(map(repr, error.validator_value)),
        "type": lambda: f"a value of type {error.validator_value}",
        "minimum": lambda: f"a number >= {error.validator_value}",
        "maximum": lambda: f"a number <= {error.validator_value}",
        "exclusiveMinimum": lambda: f"a number > {error.validator_value}",
        "multipleOf": lambda: f"a multiple of {error.validator_value}",
    }.get(error.validator, lambda: error.message)()
    return f"config key {key!r}{where}: got {error.instance!r}, expected {expected}"


def _with_defaults(validator_class):
    """A validator that fills `default`s into the instance while it validates (as snakemake does)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def validate_config(config: dict, source: str = "") -> dict:
    """Validate `config` in place (defaults filled) and return it; raise ConfigError if invalid."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(f"the configuration{' in ' + source if source else ''} must be a mapping, got {type(config).__name__}")
    schema = load_schema()
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_explain(e, source) for e in errors))
    _check_dataset(config, source)
    _check_windows(config["pose"], source)
    return config


def _check_windows(pose: dict, source: str) -> None:
    """SfM windows must advance (vq3d.pose.windows owns the rule)."""
    problem = windows_invalid(pose["sfm_window_frames"], pose["sfm_window_overlap"])
    if problem:
        raise ConfigError(problem + (f" in {source}" if source else ""))


def _check_dataset(config: dict, source: str) -> None:
    """Cross-field rules the schema cannot say clearly."""
    if config["dataset"]["kind"] == "ego4d":
        ego = config["ego4d"]
        missing = [k for k in ("annotations", "queries", "mapping", "intrinsics") if not ego.get(k)]
        if missing:
            raise ConfigError(
                f"dataset.kind is 'ego4d' but {', '.join('ego4d.' + k for k in missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set{' in ' + source if source else ''}"
            )


def defaults(section: str | None = None) -> dict:
    """The schema's defaults: the whole configuration, or one section of it (a fresh copy)."""
    config = validate_config({})
    return config if section is None else config[section]


def tool_options(tool: str, options: dict | None, where: str) -> dict:
    """`options` of a CLI tool checked against the schema's `$defs.<tool>`, its defaults filled
    (a fresh dict); a bad option raises ConfigError naming `where` (e.g. "synth --layout ego4d")."""
    schema = load_schema()["$defs"][tool]
    options = dict(options or {})
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(options), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid options:\n  " + "\n  ".join(
            _explain(e, where).replace("config key", "option", 1).replace("unknown config key(s)",
                                                                          "unknown option(s)", 1)
            for e in errors))
    return options


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Read a config file (or start empty), apply `overrides` (nested dict), validate, fill defaults."""
    config: dict = {}
    source = ""
    if path is not None:
        source = str(path)
        try:
            config = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if overrides:
        _merge(config, overrides)
    return validate_config(config, source)


def _merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def add_arguments(parser) -> None:
    parser.add_argument("config", nargs="?", default="config.yaml", help="config file (default: config.yaml)")
    parser.add_argument("--print", action="store_true", help="print the config with defaults filled")


def run(args) -> int:
    import sys

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"vq3d validate-config: {exc}", file=sys.stderr)
        return 1
    print(yaml.safe_dump(config, sort_keys=False) if args.print else f"{args.config}: valid")
    return 0
