"""params.yaml is checked as a whole before any stage runs: every problem in one error, then
stages read typed, frozen sections."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from cliutil import one_line_error, write_params

from cabinlift import cli, config
from cabinlift.errors import CabinliftError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = config.read_yaml(ROOT / "params.yaml")
PROFILES = ROOT / "profiles"
_DELETE = object()


def _with(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` (default: the repository's params) with dotted-key ``changes``
    applied; the value ``_DELETE`` removes the key."""
    params = copy.deepcopy(PARAMS if base is None else base)
    for key, value in changes.items():
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return params


def _one(params: dict[str, Any]) -> str:
    """The single problem of ``params``."""
    found = config.problems(params)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- valid files


def test_repository_params_have_no_problems():
    assert config.problems(PARAMS) == []
    config.build(PARAMS)  # does not raise


@pytest.mark.parametrize("store", [_DELETE, None, {"dir": None, "max_gb": 10},
                                   {"dir": ".cache/runs", "max_gb": 0.5}, {"dir": "x"}, {},
                                   {"dir": "x", "snapshot_every_epochs": 1,
                                    "snapshot_minutes": 0.5},
                                   {"dir": "x", "snapshot_every_epochs": None,
                                    "snapshot_minutes": None}])
def test_store_section_is_optional(store):
    assert config.problems(_with(store=store)) == []


@pytest.mark.parametrize("executor", [
    _DELETE, None,
    {"kind": "local", "address": None, "cpus_per_task": 1, "gpus_per_task": 0, "max_retries": 3},
    {"kind": "ray", "address": "auto", "cpus_per_task": 1, "gpus_per_task": 0.25,
     "max_retries": 3},
    {"kind": "ray", "address": "10.0.0.5:6379", "cpus_per_task": 2, "gpus_per_task": 1,
     "max_retries": 0},
    {"kind": "ray", "address": "ray://head:10001", "cpus_per_task": 4, "gpus_per_task": 2,
     "max_retries": 5}])
def test_executor_section_is_optional_and_takes_its_documented_values(executor):
    assert config.problems(_with(executor=executor, **{"numerics.mode": "native"})) == []


def test_portable_numerics_on_ray_computes_every_task_on_one_cpu():
    ray = {"kind": "ray", "address": "auto", "cpus_per_task": 2, "gpus_per_task": 0,
           "max_retries": 3}
    assert _one(_with(executor=ray)) == (
        "key 'executor.cpus_per_task' is 2, but with 'numerics.mode' portable every task "
        "computes on one thread; set it to 1, or 'numerics.mode' to native")
    assert config.problems(_with(executor={**ray, "cpus_per_task": 1})) == []
    assert _one(_with(**{"numerics.mode": "fast"})) == (
        "key 'numerics.mode' must be one of 'portable', 'native', got 'fast'")


def test_executor_section_is_typed():
    e = config.build(_with(**{"executor.kind": "ray", "executor.address": "ray://head:10001",
                              "executor.gpus_per_task": 2})).executor
    assert (e.kind, e.address, e.cpus_per_task, e.gpus_per_task, e.max_retries) == (
        "ray", "ray://head:10001", 1, 2.0, 3)
    assert isinstance(e.gpus_per_task, float)
    assert config.build(_with(executor=_DELETE)).executor is None  # the local executor


@pytest.mark.parametrize("key, value, expected", [
    ("executor.kind", "dask", "key 'executor.kind' must be one of 'local', 'ray', got 'dask'"),
    ("executor.address", "", "key 'executor.address' must be null (a private Ray instance), "
                             "'auto', 'host:port' or 'ray://host:port', got ''"),
    ("executor.address", "head", "key 'executor.address' must be null"),
    ("executor.address", "ray://head", "key 'executor.address' must be null"),
    ("executor.address", "head:port", "key 'executor.address' must be null"),
    ("executor.cpus_per_task", 0, "key 'executor.cpus_per_task' must be an integer >= 1 (the "
                                  "CPUs, and intra-op threads, of every task), got 0"),
    ("executor.cpus_per_task", 1.5, "key 'executor.cpus_per_task' must be an integer >= 1"),
    ("executor.gpus_per_task", -0.5, "key 'executor.gpus_per_task' must be a number >= 0"),
    ("executor.gpus_per_task", 1.5, "key 'executor.gpus_per_task' must be a number >= 0, a "
                                    "whole number above 1 (Ray shares a GPU only as a fraction "
                                    "below 1), got 1.5"),
    ("executor.gpus_per_task", "1", "key 'executor.gpus_per_task' must be a number >= 0"),
    ("executor.max_retries", -1, "key 'executor.max_retries' must be an integer >= 0, got -1"),
    ("executor.workers", 2, "unknown key 'executor.workers'"),
    ("executor.max_retries", _DELETE, "missing key 'executor.max_retries'"),
])
def test_bad_executor_values(key, value, expected):
    assert _one(_with(**{key: value})).startswith(expected)


def _on_ray(gpus: float, **changes: Any) -> dict[str, Any]:
    return _with(**{"executor.kind": "ray", "executor.gpus_per_task": gpus}, **changes)


@pytest.mark.parametrize("key", ["train.device", "detect.mmpose.device",
                                 "keypoints2d.mmpose.device"])
def test_a_ray_task_computes_only_on_the_gpus_it_reserves(key):
    assert _one(_on_ray(0, **{key: "cuda"})) == (
        f"key '{key}' is 'cuda', but a Ray task reserves no GPU ('executor.gpus_per_task' is "
        f"0); reserve GPUs or use 'auto'")
    assert _one(_on_ray(1, **{key: "cuda:1"})) == (
        f"key '{key}' is 'cuda:1', but a Ray task sees only the 1 GPU(s) it reserves "
        f"('executor.gpus_per_task' 1), as cuda:0, ...; use 'auto' or 'cuda'")
    assert _one(_on_ray(2, **{key: "cuda:2"})).startswith(
        f"key '{key}' is 'cuda:2', but a Ray task sees only the 2 GPU(s)")
    assert config.problems(_on_ray(0.5, **{key: "cuda:0"})) == []
    assert config.problems(_on_ray(2, **{key: "cuda:1"})) == []
    assert config.problems(_on_ray(0, **{key: "cpu"})) == []
    assert config.problems(_with(**{key: "cuda:1"})) == []  # the local executor


def test_end_to_end_params_have_no_problems(tmp_path):
    """The tiny params of the pipeline tests (written and read back as those tests do, with the
    `dvc exp run -S` overrides of the real-format test) validate cleanly."""
    from test_pipeline_e2e import tiny_params
    from test_pipeline_realdata_e2e import fixture_params

    def round_trip(params: dict[str, Any], **changes: Any) -> dict[str, Any]:
        return config.read_yaml(write_params(tmp_path / "params.yaml", params, **changes))

    assert config.problems(round_trip(tiny_params())) == []
    assert config.problems(round_trip(fixture_params())) == []
    precomputed = round_trip(fixture_params(), **{
        "data.real.root": str(tmp_path / "real"), "data.synthetic.root": str(tmp_path / "syn"),
        "detect.backend": "precomputed", "keypoints2d.backend": "precomputed",
        "detect.precomputed.results": str(tmp_path / "kp.json"),
        "keypoints2d.precomputed.results": str(tmp_path / "kp.json"),
    })
    assert config.problems(precomputed) == []
    mmpose = round_trip(fixture_params(), **{
        "data.real.root": str(tmp_path / "real"), "data.synthetic.root": str(tmp_path / "syn"),
        "detect.backend": "mmpose", "keypoints2d.backend": "mmpose",
        "detect.mmpose.checkpoint": str(tmp_path / "det.pth"),
        "keypoints2d.mmpose.checkpoint": str(tmp_path / "pose.pth"),
        "data.real.frame_stride": 12, "normalize.real_splits.train": [1, 4],
        "normalize.real_splits.test": [2],
    })
    assert config.problems(mmpose) == []


def test_mmpose_backend_params_of_the_backend_tests_have_no_problems(tmp_path):
    """As tests/keypoints/test_mmlab.py configures the MMLab backends."""
    p = _with(**{"detect.backend": "mmpose", "keypoints2d.backend": "mmpose"})
    p["detect"]["mmpose"].update(checkpoint=str(tmp_path / "a.pth"), device="cpu", batch_size=2,
                                 min_score=0.0, driver_region=[0, 0, 1, 1],
                                 cache_dir=str(tmp_path / "cache"))
    p["keypoints2d"]["mmpose"].update(checkpoint=str(tmp_path / "b.pth"), device="cpu",
                                      batch_size=4, cache_dir=None)
    assert config.problems(p) == []


def test_stages_read_typed_frozen_sections():
    params = config.build(PARAMS)
    assert params.train.lr == 0.001 and isinstance(params.train.target_unit_mm, float)
    assert params.settings[0] == "pct5" and params.setting_defs()["pct5"].fraction == 0.05
    assert params.hparams("semgcn")["hid_dim"] == 128
    with pytest.raises(ValueError, match="frozen"):
        params.train.lr = 1.0


# --------------------------------------------------------------------------- one error, all problems


def _many_problems() -> dict[str, Any]:
    return _with(**{
        "train.lr": -0.001,  # out of range
        "train.batch_size": "64",  # wrong type
        "train.learning_rate": 0.01,  # unknown key, close to train.lr
        "models": ["simplebl", "posenet"],  # unknown model name
        "lifters.simplebl.linear_size": 10.5,  # lifter hyper-parameter of the wrong type
        "lifters.graformer.n_head": 5,  # cross-key rule: 96 is not divisible by 5
        "evaluate.per_joint_setting": "subj3",  # cross-key rule: not a listed setting
    })


EXPECTED_PROBLEMS = [
    "key 'train.lr' must be a number > 0, got -0.001",
    "key 'train.batch_size' must be an integer >= 2 (batch norm needs two samples in a training "
    "batch), got '64'",
    "unknown key 'train.learning_rate' (did you mean 'train.lr'?)",
    "key 'models' names unknown model 'posenet'",
    "key 'lifters.simplebl.linear_size' must be an integer >= 1, got 10.5",
    "key 'lifters.graformer.dim_model' (96) must be divisible by 'lifters.graformer.n_head' (5)",
    "key 'evaluate.per_joint_setting' is 'subj3', which is not listed under 'settings'",
]


def test_all_problems_in_one_error():
    with pytest.raises(CabinliftError) as info:
        config.build(_many_problems())
    message = str(info.value)
    head, *items = message.split("\n")
    assert head == f"params.yaml: {len(EXPECTED_PROBLEMS)} problems:"
    assert len(items) == len(EXPECTED_PROBLEMS)
    assert all(line.startswith("  - ") for line in items)
    for expected in EXPECTED_PROBLEMS:
        assert sum(expected in line for line in items) == 1, (expected, message)


def test_single_problem_is_one_line_naming_the_file():
    with pytest.raises(CabinliftError) as info:
        config.build(_with(**{"train.lr": 0}), "configs/mine.yaml")
    assert str(info.value) == "configs/mine.yaml: 1 problem: key 'train.lr' must be a number > 0, got 0"


# --------------------------------------------------------------------------- types and ranges


@pytest.mark.parametrize("key, value, expected", [
    ("train.batch_size", True, "key 'train.batch_size' must be an integer >= 2 (batch norm needs two "
                               "samples in a training batch), got True"),
    ("train.lr", True, "key 'train.lr' must be a number > 0, got True"),
    ("train.lr", "0.001", "key 'train.lr' must be a number > 0, got '0.001'"),
    ("train.lr", float("nan"), "key 'train.lr' must be a number > 0, got nan"),
    ("train.max_epochs", 2.0, "key 'train.max_epochs' must be an integer >= 1, got 2.0"),
    ("train.seed", -1, "key 'train.seed' must be an integer >= 0, got -1"),
    ("train.val_every", 0, "key 'train.val_every' must be an integer >= 1, got 0"),
    ("subsets.settings.pct5.fraction", 1.5,
     "key 'subsets.settings.pct5.fraction' must be a number in (0, 1], got 1.5"),
    ("subsets.settings.pct5.fraction", 0,
     "key 'subsets.settings.pct5.fraction' must be a number in (0, 1], got 0"),
    ("subsets.min_frames", 1, "key 'subsets.min_frames' must be an integer >= 2"),
    ("normalize.min_valid_joints", 14,
     "key 'normalize.min_valid_joints' must be an integer in [0, 13], got 14"),
    ("detect.simulated.miss_rate", 1.2, "key 'detect.simulated.miss_rate' must be a number in [0, 1]"),
    ("detect.simulated.score_range", [0.99, 0.85], "key 'detect.simulated.score_range' must be [lo, hi]"),
    ("keypoints2d.simulated.score_range", [0.9], "key 'keypoints2d.simulated.score_range' must be"),
    ("detect.mmpose.driver_region", [0.5, 0.0, 0.4, 1.0],
     "key 'detect.mmpose.driver_region' must be [x1, y1, x2, y2]"),
    ("detect.precomputed.driver_region", [0, 0, 1, 1.2],
     "key 'detect.precomputed.driver_region' must be [x1, y1, x2, y2]"),
    ("detect.mmpose.batch_size", 0, "key 'detect.mmpose.batch_size' must be an integer >= 1, got 0"),
    ("keypoints2d.precomputed.min_iou", -0.1,
     "key 'keypoints2d.precomputed.min_iou' must be a number in [0, 1]"),
    ("evaluate.pck.auc_steps", 1, "key 'evaluate.pck.auc_steps' must be an integer >= 2, got 1"),
    ("train.batch_size", 1, "key 'train.batch_size' must be an integer >= 2 (batch norm needs two "
                            "samples in a training batch), got 1"),
    ("evaluate.pck.threshold_mm", 0, "key 'evaluate.pck.threshold_mm' must be a number > 0, got 0"),
    ("evaluate.alpha", 1.0, "key 'evaluate.alpha' must be a number in (0, 1), got 1.0"),
    ("evaluate.alpha", 0, "key 'evaluate.alpha' must be a number in (0, 1), got 0"),
    ("store", {"dir": None, "max_gb": 0}, "key 'store.max_gb' must be a number > 0 or null, got 0"),
    ("store.snapshot_every_epochs", 0,
     "key 'store.snapshot_every_epochs' must be an integer >= 1 or null, got 0"),
    ("store.snapshot_every_epochs", 2.5,
     "key 'store.snapshot_every_epochs' must be an integer >= 1 or null, got 2.5"),
    ("store.snapshot_minutes", 0, "key 'store.snapshot_minutes' must be a number > 0 or null, got 0"),
    ("store.snapshot_minutes", "10", "key 'store.snapshot_minutes' must be a number > 0 or null"),
    ("data.synthetic.views", ["Front", "Front"], "key 'data.synthetic.views' must be a non-empty list"),
    ("data.synthetic.views", ["Backseat"], "key 'data.synthetic.views' must be a non-empty list"),
    ("normalize.real_splits.val", ["vp10"], "key 'normalize.real_splits.val' must be a non-empty list"),
    ("normalize.synthetic_splits.test", [], "key 'normalize.synthetic_splits.test' must be a non-empty"),
    ("settings", [], "key 'settings' must be a non-empty list of distinct setting names, got []"),
    ("evaluate.qualitative.inits", ["scratch", "finetuned"],
     "key 'evaluate.qualitative.inits' must be a non-empty list of distinct values among"),
    ("evaluate.qualitative.frame_id", "12", "key 'evaluate.qualitative.frame_id' must be an integer or null"),
    ("train", [1, 2], "key 'train' must be a mapping, got [1, 2]"),
])
def test_type_and_range(key, value, expected):
    assert _one(_with(**{key: value})).startswith(expected)


@pytest.mark.parametrize("key, value, expected", [
    ("detect.backend", "openpose",
     "key 'detect.backend' must be one of 'simulated', 'mmpose', 'precomputed', got 'openpose'"),
    ("train.device", "gpu", "key 'train.device' must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ("train.device", "cuda:x", "key 'train.device' must be"),
    ("keypoints2d.mmpose.device", "tpu", "key 'keypoints2d.mmpose.device' must be"),
    ("train.runs_per_group", "many", "key 'train.runs_per_group' must be 'auto' or an integer >= 1"),
    ("train.workers", 0, "key 'train.workers' must be 'auto' or an integer >= 1, got 0"),
    ("train.workers", True, "key 'train.workers' must be 'auto' or an integer >= 1, got True"),
])
def test_choices(key, value, expected):
    assert _one(_with(**{key: value})).startswith(expected)


@pytest.mark.parametrize("key, value", [
    ("train.device", "cuda:1"), ("train.device", "cuda"), ("train.device", "cpu"),
    ("train.workers", 3), ("train.runs_per_group", 8), ("detect.mmpose.device", "cuda:0"),
    ("data.synthetic.cache_dir", None), ("detect.mmpose.cache_dir", None),
    ("detect.precomputed.images", "data/external/images.json"), ("train.lr", 1),
    ("evaluate.qualitative.model", None), ("evaluate.per_joint_setting", "subj4"),
    ("lifters.simplebl.dropout", 0), ("detect.mmpose", _DELETE), ("keypoints2d.precomputed", _DELETE),
])
def test_legal_values_are_accepted(key, value):
    assert config.problems(_with(**{key: value})) == []


@pytest.mark.parametrize("key, value", [
    ("data.real.root", None), ("data.real.root", ""), ("data.synthetic.root", 3),
    ("detect.mmpose.checkpoint", None), ("keypoints2d.precomputed.results", ["a.json"]),
    ("data.synthetic.cache_dir", ""), ("store", {"dir": 1}),
])
def test_paths_are_non_empty_strings(key, value):
    problem = _one(_with(**{key: value}))
    assert "must be a path (non-empty string)" in problem, problem


# --------------------------------------------------------------------------- unknown and missing keys


@pytest.mark.parametrize("key, suggestion", [
    ("trian", "train"),
    ("train.lrr", "train.lr"),
    ("data.real.frame_strid", "data.real.frame_stride"),
    ("detect.simulated.miss_rte", "detect.simulated.miss_rate"),
    ("keypoints2d.mmpose.batchsize", "keypoints2d.mmpose.batch_size"),
    ("normalize.real_splits.tran", "normalize.real_splits.train"),
    ("subsets.settings.pct5.fractoin", "subsets.settings.pct5.fraction"),
    ("evaluate.pck.auc_step", "evaluate.pck.auc_steps"),
    ("evaluate.qualitative.frameid", "evaluate.qualitative.frame_id"),
    ("store.max_gbs", "store.max_gb"),
])
def test_unknown_key_with_suggestion(key, suggestion):
    assert _one(_with(**{key: 1})) == f"unknown key '{key}' (did you mean '{suggestion}'?)"


def test_unknown_key_without_close_match_lists_the_known_ones():
    problem = _one(_with(**{"train.zzz": 1}))
    assert problem.startswith("unknown key 'train.zzz' (expected one of seed, lr, lr_decay,")


@pytest.mark.parametrize("key", ["train.lr", "train.eval_batch_size", "data.real", "subsets.seed",
                                 "subsets.settings.pct5.repetitions", "evaluate.alpha",
                                 "normalize.synthetic_splits.val", "demo", "lifters"])
def test_missing_required_key(key):
    assert _one(_with(**{key: _DELETE})).startswith(f"missing key '{key}'")


def test_chosen_backend_needs_its_section_and_seed():
    p = _with(**{"detect.simulated": _DELETE, "keypoints2d.seed": _DELETE})
    assert config.problems(p) == [
        "missing key 'detect.simulated' (the settings of the backend chosen by 'detect.backend')",
        "missing key 'keypoints2d.seed' (an integer >= 0, used by the simulated backend)",
    ]
    assert config.problems(_with(**{"keypoints2d.backend": "precomputed",
                                            "keypoints2d.seed": _DELETE})) == []


# --------------------------------------------------------------------------- models and lifters


def test_unknown_model_with_suggestion():
    problem = _one(_with(models=["simplebl", "semgnc"]))
    assert problem.startswith("key 'models' names unknown model 'semgnc' (did you mean 'semgcn'? "
                              "expected one of simplebl, semgcn,")


@pytest.mark.parametrize("models, expected", [
    ([], "key 'models' must be a non-empty list of model names, got []"),
    ("simplebl", "key 'models' must be a non-empty list of model names, got 'simplebl'"),
    (["simplebl", "simplebl"], "key 'models' lists model 'simplebl' twice"),
])
def test_bad_model_list(models, expected):
    assert _one(_with(models=models)) == expected


def test_listed_model_needs_its_lifters_section():
    assert _one(_with(**{"lifters.graphmlp": _DELETE})).startswith("missing key 'lifters.graphmlp'")
    # a model that is not trained may go without hyper-parameters
    assert config.problems(_with(models=["simplebl"], **{"lifters.graphmlp": _DELETE})) == []


def test_unknown_entry_under_lifters():
    problem = _one(_with(**{"lifters.jointformr": {"d_model": 64}}))
    assert problem.startswith("key 'lifters' has an entry for unknown model 'jointformr' "
                              "(did you mean 'jointformer'?")


@pytest.mark.parametrize("key, value, expected", [
    ("lifters.semgcn.hid_dims", 64, "unknown key 'lifters.semgcn.hid_dims' (did you mean "
                                    "'lifters.semgcn.hid_dim'?)"),
    ("lifters.simplebl.num_joints", 17, "unknown key 'lifters.simplebl.num_joints'"),
    ("lifters.simplebl.linear_size", 64.0,
     "key 'lifters.simplebl.linear_size' must be an integer >= 1, got 64.0"),
    ("lifters.jointformer.n_layers", 0, "key 'lifters.jointformer.n_layers' must be an integer >= 1"),
    ("lifters.semgcn.non_local", "yes", "key 'lifters.semgcn.non_local' must be true or false, got 'yes'"),
    ("lifters.semgcn.non_local", 1, "key 'lifters.semgcn.non_local' must be true or false, got 1"),
    ("lifters.graphmlp.drop_path", 1.5, "key 'lifters.graphmlp.drop_path' must be a number in [0, 1]"),
    ("lifters.graformer.attn_dropout", "0.1", "key 'lifters.graformer.attn_dropout' must be a number"),
    ("lifters.simplebl", None, "key 'lifters.simplebl' must be a mapping, got None"),
])
def test_lifter_hyper_parameters_follow_the_constructor(key, value, expected):
    assert _one(_with(**{key: value})).startswith(expected)


@pytest.mark.parametrize("key, value, expected", [
    ("lifters.simplebl.activation", "gelu",
     "key 'lifters.simplebl.activation' must be one of 'relu', 'leaky_relu', got 'gelu'"),
    ("lifters.simplebl.bias_init", "zeros",
     "key 'lifters.simplebl.bias_init' must be one of 'default', 'zero', got 'zeros'"),
    ("lifters.semgcn.graph", "coco16",
     "key 'lifters.semgcn.graph' must be one of 'coco15', 'coco17', got 'coco16'"),
    ("lifters.semgcn.non_local_groups", None,
     "key 'lifters.semgcn.non_local_groups' must be one of 'flip_pairs', 'authors', got None"),
    ("lifters.graformer.graph", 17,
     "key 'lifters.graformer.graph' must be one of 'coco15', 'coco17', got 17"),
    ("lifters.graphmlp.graph_layout", "authors",
     "key 'lifters.graphmlp.graph_layout' must be one of 'coco13', 'authors_shifted', "
     "got 'authors'"),
])
def test_literal_annotated_hyper_parameters_are_choices(key, value, expected):
    assert _one(_with(**{key: value})) == expected


def test_literal_choices_accept_each_listed_value():
    assert config.problems(_with(**{
        "lifters.simplebl.activation": "leaky_relu", "lifters.simplebl.bias_init": "zero",
        "lifters.semgcn.graph": "coco17", "lifters.semgcn.non_local_groups": "authors",
        "lifters.graformer.graph": "coco17", "lifters.graformer.deepcopy_init": True,
        "lifters.graphmlp.graph_layout": "authors_shifted",
    })) == []


def test_every_lifter_hyper_parameter_is_set_in_params():
    """A hyper-parameter missing from params.yaml is an error (not its constructor's default)."""
    assert _one(_with(**{"lifters.simplebl.dropout": _DELETE})) == (
        "missing key 'lifters.simplebl.dropout' (expected a number in [0, 1])")
    found = config.problems(_with(**{"lifters.jointformer": {}}))
    assert len(found) == 9 and found[0] == (
        "missing key 'lifters.jointformer.d_model' (expected an integer >= 1)")
    # constructor arguments for other skeletons are not hyper-parameters of params.yaml
    assert _one(_with(**{"lifters.semgcn.edges": [[0, 1]]})).startswith(
        "unknown key 'lifters.semgcn.edges' (expected one of hid_dim, num_layers,")


def test_lifters_are_typed_frozen_configs_with_the_file_s_values_in_its_order():
    """``Params.lifters`` holds each lifter's config; ``hparams`` (what trains, and what run-store
    keys and checkpoints hold) is exactly the mapping params.yaml writes, with every profile's
    values set in place (as `cabinlift profile apply` writes them, keeping the file's layout)."""
    from cabinlift import profiles
    from cabinlift.lifters import lifter_class

    for raw in [PARAMS, *(_with(**profiles.load_profile(name, PROFILES).values)
                          for name in profiles.available(PROFILES))]:
        params = config.build(raw)
        for model in PARAMS["models"]:
            assert type(params.lifters[model]) is lifter_class(model).Config
            hparams = params.hparams(model)
            assert hparams == raw["lifters"][model]
            assert list(hparams) == list(raw["lifters"][model])
            assert [type(v) for v in hparams.values()] == [
                type(v) for v in raw["lifters"][model].values()]
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.lifters["simplebl"].dropout = 0.1


# --------------------------------------------------------------------------- cross-key rules


def test_graformer_width_divisible_by_heads():
    assert _one(_with(**{"lifters.graformer.dim_model": 98})) == (
        "key 'lifters.graformer.dim_model' (98) must be divisible by 'lifters.graformer.n_head' (4)")
    # the rule waits for both keys (no constructor default fills a missing one)
    assert _one(_with(**{"lifters.graformer.dim_model": _DELETE, "lifters.graformer.n_head": 7})) == (
        "missing key 'lifters.graformer.dim_model' (expected an integer >= 1)")
    assert config.problems(_with(**{"lifters.graformer.dim_model": 128,
                                           "lifters.graformer.n_head": 8})) == []


def test_settings_list_names_defined_settings():
    problem = _one(_with(settings=["pct5", "subj3"]))
    assert problem.startswith("key 'settings' names setting 'subj3', which has no definition under "
                              "'subsets.settings' (did you mean")
    assert _one(_with(settings=["pct5", "pct5"])).startswith("key 'settings' must be a non-empty list")


def test_setting_name_without_dots():
    p = _with()
    p["subsets"]["settings"]["a.b"] = {"subjects": 1, "fraction": 1.0, "repetitions": 1,
                                       "seeds": 1}
    assert _one(p).startswith("setting name 'a.b' under 'subsets.settings' must be")


def test_fraction_below_one_only_with_one_subject():
    assert _one(_with(**{"subsets.settings.subj2.fraction": 0.5})) == (
        "key 'subsets.settings.subj2': a fraction below 1 is defined for one subject only "
        "(subjects: 1), got subjects: 2")


def _once_each(name: str, reps: int, pool: int) -> str:
    return (f"key 'subsets.settings.{name}.repetitions' ({reps}) exceeds the {pool} training "
            f"subjects of 'normalize.real_splits.train' (a single-subject setting trains each "
            f"repetition on another subject)")


def test_setting_subjects_fit_the_training_split():
    p = _with(**{"normalize.real_splits.train": [1, 2, 3]})
    assert config.problems(p) == [
        *(_once_each(name, 8, 3) for name in ("pct5", "pct10", "pct25", "pct50", "subj1")),
        "key 'subsets.settings.subj2.repetitions' (8) exceeds the number of distinct combinations "
        "of 2 out of the 3 training subjects of 'normalize.real_splits.train' (3)",
        "key 'subsets.settings.subj4.subjects' (4) exceeds the 3 training subjects of "
        "'normalize.real_splits.train'",
        "key 'subsets.settings.subj8.subjects' (8) exceeds the 3 training subjects of "
        "'normalize.real_splits.train'",
    ]
    # only the listed settings are drawn; one repetition per subject fits
    assert config.problems(_with(p, settings=["pct5", "subj1"], **{
        "subsets.settings.pct5.repetitions": 3, "subsets.settings.subj1.repetitions": 2})) == []


def test_single_subject_setting_never_reuses_a_subject():
    """Five training subjects cannot give eight distinct single-subject runs."""
    p = _with(**{"normalize.real_splits.train": [1, 2, 3, 4, 5], "settings": ["pct5"]})
    assert config.problems(p) == [_once_each("pct5", 8, 5)]


@pytest.mark.parametrize("key, value, member, splits", [
    ("normalize.real_splits.val", [10, 3], 3, "'normalize.real_splits.train' and "
                                              "'normalize.real_splits.val'"),
    ("normalize.synthetic_splits.test", ["human_13", "human_09"], "human_09",
     "'normalize.synthetic_splits.val' and 'normalize.synthetic_splits.test'"),
])
def test_splits_are_disjoint(key, value, member, splits):
    assert _one(_with(**{key: value})) == (
        f"{member!r} is listed in both {splits} (splits must be disjoint)")


def test_qualitative_figure_names_a_trained_model_and_both_frame_keys():
    assert _one(_with(**{"evaluate.qualitative.model": "graformer"}, models=["simplebl"])) == (
        "key 'evaluate.qualitative.model' is 'graformer', which is not among 'models' (simplebl)")
    assert _one(_with(**{"evaluate.qualitative.frame_id": 12})).startswith(
        "keys 'evaluate.qualitative.file_id' and 'evaluate.qualitative.frame_id' must be given both")
    assert config.problems(_with(**{"evaluate.qualitative.frame_id": 12,
                                           "evaluate.qualitative.file_id": "vp11/run1"})) == []


def test_per_joint_setting_is_null_or_listed():
    assert _one(_with(**{"evaluate.per_joint_setting": "subj16"})).startswith(
        "key 'evaluate.per_joint_setting' is 'subj16', which is not listed under 'settings'")


# --------------------------------------------------------------------------- the demo section


@pytest.mark.parametrize("key, value, expected", [
    ("demo.real.fps", 0, "key 'demo.real.fps' must be a positive integer, got 0"),
    ("demo.real.colour", 1, "unknown key 'demo.real.colour'"),
    ("demo.synthetic.views", ["Nowhere"], "key 'demo.synthetic.views' must be a non-empty list of "
                                          "distinct views among"),
    ("demo", [1], "key 'demo' must be a mapping, got [1]"),
])
def test_demo_section(key, value, expected):
    assert _one(_with(**{key: value})).startswith(expected)


# --------------------------------------------------------------------------- the CLI


def test_cli_lists_every_problem_and_writes_nothing(tmp_path, capsys):
    params = _many_problems()
    path = write_params(tmp_path / "bad.yaml", params)
    out = tmp_path / "subsets"
    argv = ["--params", str(path), "subsets", "--processed", str(tmp_path / "processed"),
            "--out", str(out)]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == f"cabinlift subsets: error: {path}: {len(EXPECTED_PROBLEMS)} problems:"
    for expected in EXPECTED_PROBLEMS:
        assert any(expected in line for line in lines[1:]), (expected, captured.err)
    assert not out.exists()


def test_cli_single_problem_is_one_line(tmp_path, capsys):
    path = write_params(tmp_path / "params.yaml", copy.deepcopy(PARAMS), **{"train.lrr": 0.1})
    out = tmp_path / "demo"
    err = one_line_error(capsys, ["--params", str(path), "demo", "--out", str(out)])
    assert err == (f"cabinlift demo: error: {path}: 1 problem: unknown key 'train.lrr' "
                   f"(did you mean 'train.lr'?)")
    assert not out.exists()


def test_cli_lift_does_not_need_valid_params(tmp_path, capsys):
    """`lift` works outside a pipeline checkout: its params file is optional and not checked."""
    path = write_params(tmp_path / "params.yaml", copy.deepcopy(PARAMS), **{"train.lrr": 0.1})
    argv = ["--params", str(path), "lift", "--checkpoint", str(tmp_path / "m.pt"),
            "--input", str(tmp_path / "in.json"), "--out", str(tmp_path / "out.txt")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "out.txt: the output must end in .npz or .json" in err and "problem" not in err
