"""The benchmark scripts still run against the package (they are not part of the pipeline,
so nothing else would notice an API they call going away): each on the smallest workload."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [
    ["benchmarks/lifter_throughput.py", "--models", "semgcn", "--seconds", "0.01",
     "--threads", "1"],
    ["benchmarks/training_engine.py", "--models", "simplebl", "--steps", "1", "--epochs", "1",
     "--repeats", "1", "--threads", "1"],
    ["benchmarks/paper_scale_estimate.py", "--models", "simplebl", "--seconds", "0.01"],
    ["benchmarks/export_latency.py", "--models", "semgcn", "--rounds", "1", "--calls", "1",
     "--checkpoint", "absent/{model}.pt", "--test", "absent.npz"],
])
def test_benchmark_runs_on_the_smallest_workload(argv, tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, *argv, "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert argv[2] in out.read_text()
