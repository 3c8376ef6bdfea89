import copy

import pytest
import yaml

from cabinlift import config
from cabinlift.errors import CabinliftError

PARAMS = config.load_params("params.yaml")


def test_repository_params_are_valid():
    assert config.models(PARAMS)
    settings = config.settings(PARAMS)
    assert list(settings) == PARAMS["settings"]


def test_unknown_model_is_named():
    p = copy.deepcopy(PARAMS)
    p["models"] = ["simplebl", "posenet9000"]
    with pytest.raises(CabinliftError, match=r"'models'.*'posenet9000'"):
        config.models(p)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, "half"])
def test_bad_fraction_names_the_key(bad):
    p = copy.deepcopy(PARAMS)
    p["subsets"]["settings"]["pct5"]["fraction"] = bad
    with pytest.raises(CabinliftError, match=r"subsets\.settings\.pct5\.fraction"):
        config.settings(p)


def test_setting_without_definition():
    p = copy.deepcopy(PARAMS)
    p["settings"] = ["pct5", "pct7"]
    with pytest.raises(CabinliftError, match="pct7"):
        config.settings(p)


def test_missing_key_and_bad_yaml(tmp_path):
    with pytest.raises(CabinliftError, match="missing key 'train.lr'"):
        config.get({"train": {}}, "train.lr")
    bad = tmp_path / "params.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(CabinliftError, match=r"params\.yaml.*not valid YAML"):
        config.load_params(bad)
    bad.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(CabinliftError, match="mapping"):
        config.load_params(bad)
