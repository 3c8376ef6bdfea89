"""The Ray executor on a real cluster of two nodes on this machine (one CPU each): the
pre-training and fine-tuning stages run through ``dvc repro`` with ``executor.kind: ray`` write
the bytes the local executor writes with one thread per run, their units run on both nodes, a
node killed while it trains a stack costs nothing but time (Ray runs the task again on the
other node), and a change to one lifter re-runs only that lifter's work."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from dvcrepo import DVC, base_params, make_repo
from dvcrepo import run as _run
from raycluster import LocalCluster
from test_pipeline_e2e import tiny_params

pytestmark = pytest.mark.slow

MODELS = ("simplebl", "semgcn")
SETTINGS = ["pct5", "pct10"]
STAGE = "finetune_pretrained@simplebl"


def params() -> dict:
    p = tiny_params()
    p["models"] = list(MODELS)
    p["lifters"]["semgcn"] = {**base_params()["lifters"]["semgcn"], "hid_dim": 16,
                              "num_layers": 1}
    p["settings"] = SETTINGS
    p["threads"] = 1  # the local executor trains each run on one thread, as a task on Ray
    return p


def outputs(repo: Path) -> dict[str, bytes]:
    """Every file the training stages write."""
    roots = [repo / "models", repo / "metrics" / "pretrain"]
    return {str(f.relative_to(repo)): f.read_bytes()
            for root in roots for f in sorted(root.rglob("*")) if f.is_file()}


def set_params(repo: Path, **changes) -> None:
    p = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in changes.items():
        node = p
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def units(repo: Path, stage: str) -> list[dict]:
    """The executor's record of a stage: one line per finished unit."""
    return [json.loads(line) for line in
            (repo / "logs" / "units" / f"{stage}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must be short
    cluster = LocalCluster(root)
    try:
        cluster.add_node(cpus=1)
        cluster.add_node(cpus=1)
        yield cluster
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory, cluster):
    """The pipeline up to the fine-tuning stages, trained by the local executor; its training
    outputs as they were then."""
    repo = make_repo(tmp_path_factory.mktemp("raygrid"), params())
    _run(DVC + ["repro", STAGE], repo, env=cluster.env())
    return repo, outputs(repo), (repo / "dvc.lock").read_text()


def repro(repo: Path, cluster: LocalCluster, *args: str) -> str:
    proc = _run(DVC + ["repro", *args], repo, env=cluster.env())
    return proc.stdout + proc.stderr


def use_ray(repo: Path, cluster: LocalCluster) -> None:
    set_params(repo, executor={"kind": "ray", "address": cluster.address, "cpus_per_task": 1,
                               "gpus_per_task": 0, "max_retries": 3})


def test_ray_stages_write_the_bytes_of_the_local_executor_using_both_nodes(repo, cluster):
    repo, local, lock = repo
    use_ray(repo, cluster)
    _run(["cabinlift", "store", "clean", "--all"], repo)  # every run is trained again
    log = repro(repo, cluster, "--force", "--single-item", "pretrain", STAGE)
    assert log.count(": trained in ") == 2 + 16 and ": reused " not in log, log[-3000:]
    assert outputs(repo) == local
    assert (repo / "dvc.lock").read_text() == lock  # executor is not a stage parameter
    nodes = set(cluster.alive())
    record = units(repo, "finetune_pretrained_simplebl")  # 16 stacks and the no-real-data test
    assert len(nodes) == 2 and len(record) == 17 and {r["node"] for r in record} == nodes
    assert sorted(r["unit"] for r in units(repo, "pretrain")) == ["pretrain semgcn",
                                                                  "pretrain simplebl"]


def test_a_changed_lifter_retrains_only_its_own_runs(repo, cluster):
    """One pre-training stage for all lifters: a change to SemGCN re-runs it, SimpleBL's run
    comes from the store, its checkpoint keeps its bytes, and so SimpleBL's fine-tuning stage
    does not run again."""
    repo, local, _ = repo
    use_ray(repo, cluster)
    set_params(repo, **{"lifters.semgcn.hid_dim": 24})
    log = repro(repo, cluster, STAGE)
    assert "pretrain simplebl: reused" in log and "pretrain semgcn: trained" in log, log
    ran = {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}
    assert ran == {"pretrain"}, ran
    now = outputs(repo)
    for name in ("models/pretrained/simplebl.pt", "metrics/pretrain/simplebl.json"):
        assert now[name] == local[name]
    assert now["models/pretrained/semgcn.pt"] != local["models/pretrained/semgcn.pt"]


@pytest.mark.mmlab
def test_mmpose_keypoints_of_a_recording_are_a_task(tmp_path, cluster):
    """keypoints2d with the mmpose backend (the paper's HRNet, random weights): each recording
    a Ray task, the interim files those of the local executor; the tasks also fill the resume
    cache, so a second run computes nothing. Paths in params are relative to the project
    folder, where Ray workers do not run."""
    from mmlab_checkpoints import random_pose_checkpoint
    from realformat import add_videos, build

    from cabinlift.formats.drive_act import discover_recordings

    real = build(tmp_path / "data", videos=False)[0]
    for rec in discover_recordings(real)[2:]:  # two recordings (one frame each) are enough
        rec.pose3d_path.unlink()
    add_videos(real)
    p = base_params()
    p["threads"] = 1
    p["data"]["real"].update(root="data/drive_and_act", frame_stride=12)
    p["keypoints2d"]["backend"] = "mmpose"
    p["keypoints2d"]["mmpose"].update(checkpoint=random_pose_checkpoint(tmp_path).name,
                                      device="auto", batch_size=2)
    (tmp_path / "detect.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    _run(["cabinlift", "--params", "detect.yaml", "detect", "--out", "det"], tmp_path)
    out = {}
    for kind in ("local", "ray"):
        p["keypoints2d"]["mmpose"]["cache_dir"] = f"{kind}/cache"
        p["executor"] = {"kind": kind, "address": cluster.address, "cpus_per_task": 1,
                         "gpus_per_task": 0, "max_retries": 3}
        (tmp_path / f"{kind}.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        cmd = ["cabinlift", "--params", f"{kind}.yaml", "--timings", f"{kind}/logs",
               "keypoints2d", "--detections", "det", "--out", f"{kind}/kp"]
        _run(cmd, tmp_path, env=cluster.env())
        out[kind] = {str(f.relative_to(tmp_path / kind)): f.read_bytes()
                     for f in sorted((tmp_path / kind / "kp").rglob("*.csv"))}
    assert len(out["local"]) == 2 and out["ray"] == out["local"]
    record = units(tmp_path / "ray", "keypoints2d")
    assert sorted(r["unit"] for r in record) == [
        f"keypoints2d {rec.file_id}" for rec in discover_recordings(real)]
    assert {r["node"] for r in record} <= set(cluster.alive())
    again = json.loads(_run(cmd, tmp_path, env=cluster.env()).stdout)
    assert again["resumed_recordings"] == 2, again


def _sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def _after_file(path: str, value: int) -> int:
    """Finishes only once ``path`` exists (another unit makes it)."""
    deadline = time.time() + 120
    while not Path(path).exists() and time.time() < deadline:
        time.sleep(0.05)
    return value


def _make_file(path: str, value: int) -> int:
    Path(path).touch()
    return value


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _fail(message: str) -> None:
    from cabinlift.errors import CabinliftError

    raise CabinliftError(message)


def _defect() -> None:
    {}["missing"]  # noqa: B018 - a KeyError, as a defect raises it


def test_ray_executor_yields_in_order_and_names_a_failed_unit(cluster, monkeypatch, tmp_path):
    for key, value in cluster.env().items():  # the cluster's token, read when Ray is imported
        if key.startswith("RAY_"):
            monkeypatch.setenv(key, value)
    from ray import cloudpickle

    from cabinlift.config import Executor
    from cabinlift.errors import CabinliftError
    from cabinlift.executors import Unit, open_executor

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    try:
        config = Executor(kind="ray", address=cluster.address, cpus_per_task=1, gpus_per_task=0,
                          max_retries=3)
        with open_executor(config, record=tmp_path / "units.jsonl") as ex:
            flag = str(tmp_path / "flag")  # u0 ends after u2, on the other node
            last_first = [Unit("u0", _after_file, (flag, 0)), Unit("u1", _sleep_then, (0, 1)),
                          Unit("u2", _make_file, (flag, 2))]
            assert list(ex.map(last_first, "order")) == [0, 1, 2]
            assert list(ex.map([Unit("threads", _threads)], "threads")) == [1]
            with pytest.raises(CabinliftError) as err:
                list(ex.map([Unit("u0", _sleep_then, (0, 0)),
                             Unit("pretrain semgcn", _fail, ("a.npz: bad row 4",))], "fail"))
            assert str(err.value) == "pretrain semgcn: a.npz: bad row 4"
            with pytest.raises(CabinliftError) as err:
                list(ex.map([Unit("keypoints2d vp1/run1", _defect)], "defect"))
            assert str(err.value) == "keypoints2d vp1/run1: KeyError: 'missing'"
        record = [json.loads(line) for line in (tmp_path / "units.jsonl").read_text().splitlines()]
        assert [r["unit"] for r in record][:4] == ["u1", "u2", "u0", "threads"]  # as finished
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_a_node_killed_mid_stage_costs_only_time(repo, cluster):
    """The worker node's raylet is killed while it trains a stack: Ray runs that task again on
    the head node, and the stage writes the same bytes."""
    repo, local, _ = repo
    use_ray(repo, cluster)
    _run(["cabinlift", "store", "clean", "--all"], repo)
    head, victim = cluster.nodes
    head_id, victim_id = cluster.node_id(head), cluster.node_id(victim)
    cmd = DVC + ["repro", "--force", "--single-item", STAGE]
    import subprocess

    env = cluster.env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline, busy = time.time() + 300, []
        while not busy and proc.poll() is None and time.time() < deadline:
            busy = victim.running("finetune pretrained simplebl")
            time.sleep(0.01)
        assert busy, "no task ran on the worker node"
        victim.raylet().kill()
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    folder = "models/finetuned/pretrained/simplebl/"
    now = {k: v for k, v in outputs(repo).items() if k.startswith(folder)}
    assert len(now) == 2 * 8 + 3 * 2 and now == {k: v for k, v in local.items()
                                                  if k.startswith(folder)}
    record = {r["unit"]: r["node"] for r in units(repo, "finetune_pretrained_simplebl")}
    assert len(record) == 17 and set(record.values()) <= {head_id, victim_id}
    for name in busy:  # the stack the dead node was training finished on the head
        assert record[name] == head_id, (name, record)
    cluster.wait_for(1)  # the cluster sees the node dead (after its health checks fail)
    assert list(cluster.alive()) == [head_id]
