"""params.yaml is laid out the way DVC writes it back, so `dvc exp run -S key=value` changes
exactly one line of it and keeps every comment.

DVC's `-S` (dvc.utils.hydra.apply_overrides) loads params.yaml with ruamel's round-trip loader,
replaces every list and scalar with a plain value and dumps it with ruamel's defaults: block
lists with the dash at the key's indent, null as an empty value, a string that does not fit in
80 columns on a line of its own (after `key: `), and no comment or blank line right after a
list (ruamel keeps those with the list, which is replaced). A file in that layout is a fixed
point of the round trip.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


def _apply(tmp_path: Path, overrides: list[str]) -> tuple[str, str]:
    """params.yaml before and after DVC's own `-S` code path applied ``overrides`` to a copy."""
    from dvc.utils.hydra import apply_overrides

    copy = tmp_path / "params.yaml"
    shutil.copy(PARAMS, copy)
    apply_overrides(str(copy), overrides)
    return PARAMS.read_text(), copy.read_text()


def _diff(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                  "params.yaml", "after dvc -S", lineterm="", n=0)
            if not line.startswith("@@")]


def test_params_yaml_is_a_fixed_point_of_dvcs_round_trip(tmp_path):
    """Setting a value to what it is rewrites every list and scalar: nothing may change."""
    seed = yaml.safe_load(PARAMS.read_text())["train"]["seed"]
    before, after = _apply(tmp_path, [f"train.seed={seed}"])
    changed = _diff(before, after)
    assert not changed, ("params.yaml is not laid out as DVC writes it back (block lists at the "
                         "key's indent, null as an empty value, no comment right after a list); "
                         "`dvc exp run -S` would make these changes:\n" + "\n".join(changed))


@pytest.mark.parametrize(("override", "old", "new"), [
    ("train.lr=0.002", "  lr: 0.001", "  lr: 0.002"),
    ("lifters.simplebl.dropout=0.25", "    dropout: 0.5", "    dropout: 0.25"),
    ("data.real.root=/data/drive_and_act", "    root: data/raw/demo/drive_and_act",
     "    root: /data/drive_and_act"),
])
def test_one_set_param_changes_one_line(tmp_path, override, old, new):
    before, after = _apply(tmp_path, [override])
    assert _diff(before, after) == ["--- params.yaml", "+++ after dvc -S", f"-{old}", f"+{new}"]


def test_every_comment_survives_the_round_trip(tmp_path):
    before, after = _apply(tmp_path, ["train.lr=0.002"])
    comments = [line.strip() for line in before.splitlines() if line.strip().startswith("#")]
    assert len(comments) >= 50 and comments == [
        line.strip() for line in after.splitlines() if line.strip().startswith("#")]
