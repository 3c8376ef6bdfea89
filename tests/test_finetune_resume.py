"""Resume inside a stage: a fine-tuning stage killed with SIGKILL after k of its n runs trains
exactly the n - k others when run again, and writes what an uninterrupted run writes."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cliutil import write_params
from tinydata import write_processed

from cabinlift import config
from cabinlift.training.store import RunStore

pytestmark = pytest.mark.slow

SETTINGS = ("pct25", "subj1")  # 2 x 8 runs


def _params(store: Path | None) -> dict:
    p = copy.deepcopy(config.read_yaml("params.yaml"))
    p["lifters"]["simplebl"].update(linear_size=128, num_stage=2, dropout=0.5)
    p["train"].update(max_epochs=40, val_every=1, patience=100, device="cpu")
    p["store"] = {"dir": None if store is None else str(store), "max_gb": 1}
    return p


def _command(params: Path, processed: Path, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "cabinlift.cli", "--params", str(params),
           "--timings", str(out.parent / "logs"), "finetune", "--model", "simplebl",
           "--init", "scratch", "--processed", str(processed), "--subsets",
           str(processed / "subsets"), "--out", str(out)]
    for s in SETTINGS:
        cmd += ["--setting", s]
    return cmd


def _outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_killed_finetune_resumes_with_only_the_unfinished_runs(tmp_path):
    processed = write_processed(tmp_path / "processed", _params(None))
    n = 16

    reference = tmp_path / "reference" / "out"
    plain = write_params(tmp_path / "plain.yaml", _params(None))
    subprocess.run(_command(plain, processed, reference), check=True, capture_output=True)

    store = RunStore(tmp_path / "store")
    params = write_params(tmp_path / "params.yaml", _params(store.root))
    out = tmp_path / "resumed" / "out"
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(_command(params, processed, out), stdout=log, stderr=log,
                                start_new_session=True)
        deadline = time.monotonic() + 300
        while len(store.entries()) < 5 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    k = len(store.entries())
    assert proc.returncode == -signal.SIGKILL
    assert 5 <= k < n, f"{k} runs were stored before the kill"

    again = subprocess.run(_command(params, processed, out), check=True, capture_output=True,
                           text=True)
    assert again.stderr.count(": trained in ") == n - k, again.stderr
    assert again.stderr.count(": reused ") == k
    assert _outputs(out) == _outputs(reference)
    print(f"killed after {k} of {n} runs")
