"""End to end: the real `dvc repro` of this repository's dvc.yaml on tiny params, in a
temporary git repository, then checks on the Table-1 files it produced."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import yaml
from dvcrepo import DVC, base_params, make_repo
from dvcrepo import run as _run

pytestmark = pytest.mark.slow


def tiny_params() -> dict:
    params = base_params()
    demo = params["demo"]
    demo["real"]["seconds_per_run"] = 40
    demo["synthetic"]["poses_per_human"] = 12
    params["train"]["max_epochs"] = 2
    params["train"]["val_every"] = 1
    params["lifters"]["simplebl"] = {"linear_size": 64, "num_stage": 1, "dropout": 0.5}
    params["models"] = ["simplebl"]
    params["evaluate"]["qualitative"]["model"] = "simplebl"
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("pipeline"), tiny_params())
    _run(DVC + ["repro"], repo)
    return repo


def test_table1_structure_and_values(repo: Path):
    params = tiny_params()
    table = json.loads((repo / "metrics" / "table1.json").read_text())
    assert set(table) == {"simplebl"}
    for init in ("scratch", "pretrained"):
        cells = table["simplebl"][init]
        assert list(cells) == params["settings"]
        for value in cells.values():
            assert math.isfinite(value) and 5.0 < value < 5000.0  # mm, plausible
    md = (repo / "metrics" / "table1.md").read_text()
    assert "PT SimpleBL" in md and "5% of a subject" in md
    rows = (repo / "metrics" / "runs.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 57
    header = rows[0].split(",")
    wall = [float(r.split(",")[header.index("wall_time_s")]) for r in rows[1:]]
    assert all(w > 0 for w in wall)


def test_plots_and_normalize_report(repo: Path):
    assert (repo / "plots" / "mpjpe_vs_data.png").stat().st_size > 1000
    assert (repo / "plots" / "mpjpe_vs_data.csv").read_text().startswith("setting")
    report = json.loads((repo / "metrics" / "normalize.json").read_text())
    assert report["real"]["kept"]["train"] > 0


def test_second_repro_is_a_no_op(repo: Path):
    out = _run([sys.executable, "-m", "dvc", "status"], repo).stdout
    assert "changed" not in out and "modified" not in out, out


def test_bad_param_fails_with_one_line_and_keeps_outputs(repo: Path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    before = (repo / "data" / "processed" / "real_train.npz").read_bytes()
    params["subsets"]["settings"]["pct5"]["fraction"] = 0
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = _run([sys.executable, "-m", "dvc", "repro"], repo, check=False)
        assert proc.returncode != 0
        assert "subsets.settings.pct5.fraction" in proc.stderr + proc.stdout
        assert (repo / "data" / "processed" / "real_train.npz").read_bytes() == before
    finally:
        params["subsets"]["settings"]["pct5"]["fraction"] = 0.05
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
