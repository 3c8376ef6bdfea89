"""The Ray executor on a real cluster on this machine (a head node without CPUs, where the
stages connect, and two worker nodes of one CPU each, where the units run): the
pre-training and fine-tuning stages run through ``dvc repro`` with ``executor.kind: ray`` write
the bytes the local executor writes with one thread per run, their units run on both nodes, a
change to one lifter re-runs only that lifter's work, and a node killed while it trains a stack
costs nothing but time (Ray runs the task again on the other node). Both executors run the same
unit functions: each stage's record names the function of every unit, and the Ray run's are
those of the local run."""

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
from tinydata import write_processed

from cabinlift.config import NO_REAL_DATA
from cabinlift.executors import function_name
from cabinlift.training import units as training_units

pytestmark = pytest.mark.slow

MODELS = ("simplebl", "semgcn")
SETTINGS = ["subj4"]  # 8 stacks of one run (on a CPU) and the pre-trained weights' test
STAGE = "finetune_pretrained@simplebl"


def params() -> dict:
    p = tiny_params()
    p["models"] = list(MODELS)
    p["lifters"]["semgcn"] = {**base_params()["lifters"]["semgcn"], "hid_dim": 16,
                              "num_layers": 1}
    p["settings"] = SETTINGS
    p["threads"] = 1  # the local executor trains each run on one thread, as a task on Ray
    p["pretrain"]["seeds"] = 1
    # a stack trains for ~0.2 s, long enough to kill a node while it trains one
    p["train"].update(max_epochs=12, patience=12)
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


def worker_nodes(cluster: LocalCluster) -> dict:
    """Node id -> node of the worker nodes alive (every node but the head)."""
    alive = cluster.alive()
    return {i: n for n in cluster.nodes[1:] for i, d in alive.items() if d == str(n.temp_dir)}


def units(repo: Path, stage: str) -> list[dict]:
    """The executor's record of a stage: one line per finished unit."""
    return [json.loads(line) for line in
            (repo / "logs" / "units" / f"{stage}.jsonl").read_text().splitlines()]


def functions(record: list[dict]) -> set[str]:
    """The functions the units of a record ran (``module.name``)."""
    return {r["fn"] for r in record}


@pytest.fixture(scope="module")
def cluster_and_repo(tmp_path_factory):
    """The cluster, and the pipeline up to a fine-tuning stage trained by the local executor
    (while the cluster's nodes start) with its training outputs, dvc.lock and the functions its
    units ran (by stage) as they were then."""
    import shutil
    import tempfile
    import threading

    root = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must be short
    cluster = LocalCluster(root)
    failed: list[BaseException] = []

    def start() -> None:
        try:
            cluster.add_node(cpus=0)
            cluster.add_node(cpus=1)
            cluster.add_node(cpus=1)
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread below
            failed.append(exc)

    starting = threading.Thread(target=start)
    starting.start()
    try:
        repo = make_repo(tmp_path_factory.mktemp("raygrid"), params())
        # the processed arrays and subsets as normalize and subsets write them (those stages
        # and the ones before them run no units of work)
        write_processed(repo / "data" / "processed", params(), repo / "data" / "subsets")
        repro(repo, cluster)
        starting.join()
        if failed:
            raise failed[0]
        ran = {stage: functions(units(repo, stage))
               for stage in ("pretrain", STAGE.replace("@", "_"))}
        yield cluster, (repo, outputs(repo), (repo / "dvc.lock").read_text(), ran)
    finally:
        starting.join()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(cluster_and_repo):
    return cluster_and_repo[0]


@pytest.fixture(scope="module")
def repo(cluster_and_repo):
    return cluster_and_repo[1]


#: The stages these tests run (each when DVC finds it changed).
STAGES = ("check", "pretrain", STAGE)


def repro(repo: Path, cluster: LocalCluster, *args: str) -> str:
    proc = _run(DVC + ["repro", "--single-item", *(args or STAGES)], repo, env=cluster.env())
    return proc.stdout + proc.stderr


def use_ray(repo: Path, cluster: LocalCluster) -> None:
    set_params(repo, executor={"kind": "ray", "address": cluster.address, "cpus_per_task": 1,
                               "gpus_per_task": 0, "max_retries": 3})


def test_ray_pretraining_writes_the_bytes_of_the_local_executor_on_both_nodes(repo, cluster):
    """The pre-trainings run at the same time, one on each node, and write what the local
    executor wrote; executor is not a stage parameter, so dvc.lock keeps its bytes."""
    repo, local, lock, local_functions = repo
    use_ray(repo, cluster)
    _run(["cabinlift", "store", "clean", "--all"], repo)  # every run is trained again
    log = repro(repo, cluster, "--force", "pretrain")
    assert log.count(": trained in ") == 2 and ": reused " not in log, log[-3000:]
    assert outputs(repo) == local
    assert (repo / "dvc.lock").read_text() == lock
    # the tasks kept both runs in the project's store (store.dir is relative to it)
    assert len(list((repo / ".cache" / "runs").glob("*.pt"))) == 2
    record = units(repo, "pretrain")
    assert sorted(r["unit"] for r in record) == ["pretrain semgcn", "pretrain simplebl"]
    assert {r["node"] for r in record} == set(worker_nodes(cluster))
    assert functions(record) == local_functions["pretrain"] == {
        function_name(training_units.pretrain)}


def test_a_changed_lifter_retrains_only_its_own_runs(repo, cluster):
    """One pre-training stage for all lifters: a change to SemGCN re-runs it, SimpleBL's run
    comes from the store, its checkpoint keeps its bytes, and so SimpleBL's fine-tuning stage
    does not run again."""
    repo, local, _, _ = repo
    use_ray(repo, cluster)
    set_params(repo, **{"lifters.semgcn.hid_dim": 24})
    log = repro(repo, cluster)
    assert "pretrain simplebl: reused" in log and "pretrain semgcn: trained" in log, log
    ran = {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}
    assert ran == {"check", "pretrain"}, ran  # check runs on every repro
    now = outputs(repo)
    for name in ("models/pretrained/simplebl/seed0.pt", "metrics/pretrain/simplebl.json"):
        assert now[name] == local[name]
    assert (now["models/pretrained/semgcn/seed0.pt"]
            != local["models/pretrained/semgcn/seed0.pt"])


@pytest.fixture
def driver(cluster, monkeypatch):
    """This process as a driver of the cluster (the cluster's token; the test module's
    functions sent by value: workers cannot import tests).

    Ray reads its authentication settings once per process, when it is first imported: another
    test of this process that imported Ray before (tests/test_executors.py does) would leave
    the token unread and every call to the cluster refused, so the settings are read again
    here, and once more after the token is gone."""
    from ray import cloudpickle
    from ray._private.authentication_test_utils import reset_auth_token_state

    for key, value in cluster.env().items():
        if key.startswith("RAY_"):
            monkeypatch.setenv(key, value)
    reset_auth_token_state()
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield cluster
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    monkeypatch.undo()
    reset_auth_token_state()


@pytest.mark.mmlab
def test_mmpose_keypoints_of_a_recording_are_a_task(tmp_path, driver, monkeypatch):
    """keypoints2d with the mmpose backend (the paper's HRNet, random weights): each recording
    a Ray task, the interim files those of the local executor on one thread; the tasks also
    fill the resume cache (what a stage stopped half-way restores instead of computing). Paths
    in params are relative to the project folder, where Ray workers do not run."""
    import torch
    from mmlab_checkpoints import random_pose_checkpoint
    from realformat import add_videos, build

    from cabinlift import config
    from cabinlift.formats.drive_act import discover_recordings
    from cabinlift.keypoints.stages import run_detect, run_keypoints2d

    real = build(tmp_path / "data", videos=False)[0]
    for rec in discover_recordings(real)[2:]:  # two recordings (one frame each) are enough
        rec.pose3d_path.unlink()
    add_videos(real)
    p = base_params()
    p["data"]["real"].update(root="data/drive_and_act", frame_stride=12)
    p["keypoints2d"]["backend"] = "mmpose"
    p["keypoints2d"]["mmpose"].update(checkpoint=random_pose_checkpoint(tmp_path).name,
                                      device="auto", batch_size=2)
    monkeypatch.chdir(tmp_path)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # the local executor's threads, as a task's
    try:
        run_detect(config.build(p), Path("det"))
        out = {}
        for kind in ("local", "ray"):
            p["keypoints2d"]["mmpose"]["cache_dir"] = f"{kind}/cache"
            p["executor"] = {"kind": kind, "address": driver.address, "cpus_per_task": 1,
                             "gpus_per_task": 0, "max_retries": 3}
            run_keypoints2d(config.build(p), Path("det"), Path(kind) / "kp",
                            Path(kind) / "logs")
            out[kind] = {str(f.relative_to(tmp_path / kind)): f.read_bytes()
                         for f in sorted((tmp_path / kind / "kp").rglob("*.csv"))}
    finally:
        torch.set_num_threads(saved)
    assert len(out["local"]) == 2 and out["ray"] == out["local"]
    record = units(tmp_path / "ray", "keypoints2d")
    assert sorted(r["unit"] for r in record) == [
        f"keypoints2d {rec.file_id}" for rec in discover_recordings(real)]
    assert functions(record) == functions(units(tmp_path / "local", "keypoints2d")) == {
        "cabinlift.keypoints.stages.infer_recording"}
    assert {r["node"] for r in record} <= set(worker_nodes(driver))
    cached = sorted(f.read_bytes() for f in (tmp_path / "ray" / "cache").rglob("*.csv"))
    assert cached == sorted(out["ray"].values())


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


def test_ray_executor_yields_in_order_and_names_a_failed_unit(driver, tmp_path):
    from cabinlift.config import Executor
    from cabinlift.errors import CabinliftError
    from cabinlift.executors import Unit, open_executor

    config = Executor(kind="ray", address=driver.address, cpus_per_task=1, gpus_per_task=0,
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


def test_a_node_killed_mid_stage_costs_only_time(repo, cluster):
    """The fine-tuning stage's stacks run on both worker nodes; the raylet of one of them is
    killed while it trains a stack (after it finished another): Ray runs that task again on
    the other node, and the stage writes the bytes of the local executor."""
    import subprocess

    repo, local, _, local_functions = repo
    use_ray(repo, cluster)
    _run(["cabinlift", "store", "clean", "--all"], repo)
    workers = worker_nodes(cluster)
    record_file = repo / "logs" / "units" / "finetune_pretrained_simplebl.jsonl"
    record_file.unlink()
    env = cluster.env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen(DVC + ["repro", "--force", "--single-item", STAGE], cwd=repo,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, busy, victim = time.time() + 300, [], None
        while not busy and proc.poll() is None and time.time() < deadline:
            finished = record_file.read_text() if record_file.is_file() else ""
            for victim in (i for i in workers if i in finished):
                busy = [name for name in workers[victim].running("finetune pretrained simplebl")
                        if not name.endswith(f" {NO_REAL_DATA}")]  # a stack, not the quick one
                if busy:
                    break
            time.sleep(0.005)
        assert busy, "no worker node finished a unit and then trained another"
        workers[victim].raylet().kill()
        finished = record_file.read_text()  # a stack may have ended between the look and the kill
        busy = [name for name in busy if f'"{name}"' not in finished]
        assert busy, "the stacks seen running finished before the node was killed"
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    folder = "models/finetuned/pretrained/simplebl/"
    now = {k: v for k, v in outputs(repo).items() if k.startswith(folder)}
    assert len(now) == len(SETTINGS) * (8 + 2) + 2 and now == {
        k: v for k, v in local.items() if k.startswith(folder)}
    record = {r["unit"]: r["node"] for r in units(repo, "finetune_pretrained_simplebl")}
    assert len(record) == 8 * len(SETTINGS) + 1 and set(record.values()) == set(workers)
    assert functions(units(repo, "finetune_pretrained_simplebl")) == local_functions[
        "finetune_pretrained_simplebl"] == {function_name(training_units.train_stack),
                                            function_name(training_units.evaluate_pretrained)}
    (survivor,) = set(workers) - {victim}
    for name in busy:  # the stack the dead node was training finished on the other one
        assert record[name] == survivor, (name, record)
