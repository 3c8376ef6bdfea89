"""What commands write into the checkout and nobody commits stays out of git: `dvc plots show`
writes dvc_plots/ (an HTML page and its data) next to dvc.yaml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", [
    "dvc_plots/index.html", "dvc_plots/static/workspace_plots_mpjpe_vs_data.png",
    ".cache/runs/abc.pt", "logs/wall_times.csv",
])
def test_generated_files_are_git_ignored(path):
    check = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT)
    assert check.returncode == 0, f"{path} is not git-ignored"
