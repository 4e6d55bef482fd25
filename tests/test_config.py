"""Config loading: defaults filled from the schema, and one clear line per mistake."""

import pytest
import yaml

from vq3d.config import ConfigError, load_config, validate_config


def test_default_config_is_valid_and_complete(repo):
    config = load_config(repo / "config.yaml")
    assert config["dataset"] == {"kind": "synth", "split": "val"}
    assert config["detect"]["peaks"]["distance"] == 25
    assert config["frames"]["fps"] == 5


def test_empty_config_gets_every_default():
    config = validate_config({})
    assert config["dataset"]["kind"] == "synth"
    assert config["ego4d"]["precomputed"]["poses"] is None
    assert config["predict"]["aggregation"] == "mf_geomedian"


@pytest.mark.parametrize(
    "bad, expected",
    [
        ({"dataset": {"kind": "ego5d"}}, "config key 'dataset.kind'"),
        ({"dataset": {"kind": "ego5d"}}, "got 'ego5d', expected one of 'synth', 'ego4d'"),
        ({"frames": {"fps": 0}}, "config key 'frames.fps': got 0, expected a number > 0"),
        ({"synth": {"scenes": "two"}}, "config key 'synth.scenes': got 'two', expected a value of type integer"),
        ({"detect": {"peaks": {"methd": "all"}}}, "unknown config key(s) 'methd' under detect.peaks"),
        ({"resuls_dir": "x"}, "unknown config key(s) 'resuls_dir' under the top level"),
        ({"dataset": {"kind": "ego4d"}}, "ego4d.annotations, ego4d.queries, ego4d.mapping, ego4d.intrinsics are not set"),
    ],
)
def test_bad_config_names_key_value_and_expectation(bad, expected):
    with pytest.raises(ConfigError) as err:
        validate_config(bad)
    assert expected in str(err.value)


def test_config_file_errors_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"dataset": {"split": "train"}}))
    with pytest.raises(ConfigError, match=r"'dataset.split' in .*c.yaml: got 'train'"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("dataset: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
