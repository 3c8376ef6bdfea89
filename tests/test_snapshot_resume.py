"""Resume inside a run: a pre-training killed with SIGKILL half-way continues, when run again,
from the last snapshot it wrote, and writes the bytes an uninterrupted pre-training writes."""

from __future__ import annotations

import copy
import os
import re
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

EPOCHS = 150


def _params(store: Path | None) -> dict:
    p = copy.deepcopy(config.read_yaml("params.yaml"))
    p["lifters"]["simplebl"].update(linear_size=256, num_stage=2, dropout=0.5)
    p["train"].update(max_epochs=EPOCHS, val_every=1, patience=EPOCHS, batch_size=16,
                      device="cpu")
    p["threads"] = 1
    p["pretrain"]["seeds"] = 1
    p["store"] = {"dir": None if store is None else str(store), "max_gb": 1,
                  "snapshot_every_epochs": 1, "snapshot_minutes": None}
    return p


def _command(params: Path, processed: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "cabinlift.cli", "--params", str(params),
            "--timings", str(out / "logs"), "pretrain", "--model", "simplebl",
            "--processed", str(processed), "--out", str(out), "--summary", str(out)]


def _outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "logs" not in p.parts}


def test_killed_pretrain_resumes_from_its_snapshot(tmp_path):
    processed = write_processed(tmp_path / "processed", _params(None))

    reference = tmp_path / "reference"
    plain = write_params(tmp_path / "plain.yaml", _params(None))
    subprocess.run(_command(plain, processed, reference), check=True, capture_output=True)

    store = RunStore(tmp_path / "store")
    params = write_params(tmp_path / "params.yaml", _params(store.root))
    out = tmp_path / "resumed"
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(_command(params, processed, out), stdout=log, stderr=log,
                                start_new_session=True)
        deadline = time.monotonic() + 300
        while not store.snapshots() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(1.0)  # a few more epochs (and snapshots) before the kill
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the pre-training ended before it was killed"
    assert len(store.snapshots()) == 1 and store.entries() == []
    assert not (out / "simplebl" / "seed0.pt").exists()

    again = subprocess.run(_command(params, processed, out), check=True, capture_output=True,
                           text=True)
    resumed = re.findall(r"pretrain simplebl: resumed from a snapshot at epoch (\d+) of (\d+)",
                         again.stderr)
    assert len(resumed) == 1, again.stderr
    epoch, total = map(int, resumed[0])
    assert 1 <= epoch < total == EPOCHS
    assert "pretrain simplebl: trained in " in again.stderr
    assert _outputs(out) == _outputs(reference)  # checkpoint and summary (history, metrics)
    assert store.snapshots() == [] and len(store.entries()) == 1
    print(f"killed after epoch {epoch} of {EPOCHS}")
