"""How far fine-tuning moves the pre-trained weights: known answers on made-up weights, and the
evaluate stage measuring each run against the pre-training it started from."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from evalgrid import SETTINGS, make_grid, options, typed_settings
from torch import nn

from cabinlift.errors import CabinliftError
from cabinlift.evaluation import run_evaluation
from cabinlift.evaluation.run_weights import RunWeights
from cabinlift.evaluation.weight_movement import (
    Spread,
    parameter_layers,
    rank_correlation,
    relative_change,
    run_movement,
)
from cabinlift.lifters import build_lifter
from cabinlift.training.checkpoints import save_checkpoint


def _numpy(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().astype(np.float64) for k, v in state.items()}


def test_relative_change_known_answers() -> None:
    start = {"a": np.array([3.0, 4.0]), "b": np.array([[0.0, 12.0]]), "z": np.zeros(3)}
    final = {"a": start["a"] * 1.1, "b": start["b"].copy(), "z": np.ones(3)}
    assert relative_change(start, final, ["a"]) == pytest.approx(0.1, abs=1e-12)
    assert relative_change(start, final, ["b"]) == 0.0  # unchanged
    # both together: ||(0.3, 0.4, 0, 0)|| / ||(3, 4, 0, 12)|| = 0.5 / 13
    assert relative_change(start, final, ["a", "b"]) == pytest.approx(0.5 / 13.0, abs=1e-12)
    assert relative_change(start, final, ["z"]) is None  # no scale to be relative to


class _Ordered(nn.Module):
    """Registered out of alphabetical order, with a parameter of its own and batch norm."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor([2.0]))
        self.zeta = nn.Linear(2, 3)
        self.norm = nn.BatchNorm1d(3)
        self.act = nn.ReLU()  # no parameters: no layer
        self.alpha = nn.Sequential(nn.Linear(3, 1, bias=False))


def test_layers_in_registration_order_without_buffers() -> None:
    layers = parameter_layers(_Ordered())
    assert [(x.name, x.kind, x.parameters) for x in layers] == [
        ("", "_Ordered", ("gain",)),
        ("zeta", "Linear", ("zeta.weight", "zeta.bias")),
        ("norm", "BatchNorm1d", ("norm.weight", "norm.bias")),  # no running statistics
        ("alpha.0", "Linear", ("alpha.0.weight",)),
    ]
    assert [x.normalises for x in layers] == [False, False, True, False]


def test_run_movement_per_layer_and_whole_model_excludes_buffers() -> None:
    torch.manual_seed(0)
    net = _Ordered()
    start = _numpy(net.state_dict())
    final = dict(start)
    final["zeta.weight"] = start["zeta.weight"] * 1.1
    final["zeta.bias"] = start["zeta.bias"] * 1.1
    final["alpha.0.weight"] = start["alpha.0.weight"] * 1.3
    final["norm.running_mean"] = start["norm.running_mean"] + 100.0  # a buffer: not counted
    final["norm.running_var"] = start["norm.running_var"] * 50.0
    got = run_movement(4, 1, start, final, parameter_layers(net))
    assert (got.repetition, got.pretrain_seed) == (4, 1)
    assert got.layers == pytest.approx((0.0, 0.1, 0.0, 0.3), abs=1e-12)  # in layer order
    moved = 0.01 * (start["zeta.weight"] ** 2).sum() + 0.01 * (start["zeta.bias"] ** 2).sum() \
        + 0.09 * (start["alpha.0.weight"] ** 2).sum()
    params = [k for k in start if "running" not in k and "num_batches" not in k]
    assert len(params) == 6
    base = sum((start[k] ** 2).sum() for k in params)
    assert got.whole == pytest.approx(math.sqrt(moved / base), rel=1e-12)


def test_spread_and_rank_correlation() -> None:
    sp = Spread.of([4.0, None, 1.0, 3.0, 2.0])
    assert (sp.median, sp.q1, sp.q3, sp.low, sp.high, sp.n) == (2.5, 1.75, 3.25, 1.0, 4.0, 4)
    assert Spread.of([None]) == Spread(None, None, None, None, None, 0)
    # the lifters that move less keep more: a perfectly falling ranking
    assert rank_correlation([(0.01, 30.0), (0.03, 10.0), (0.02, 20.0)]) == pytest.approx(-1.0)
    assert rank_correlation([(0.01, 10.0), (0.02, 20.0), (0.03, 40.0), (None, 5.0)]) \
        == pytest.approx(1.0)
    assert rank_correlation([(0.01, 10.0), (0.02, 20.0), (None, 5.0)]) is None  # two pairs
    assert rank_correlation([(0.01, 10.0), (0.02, 10.0), (0.03, 10.0)]) is None  # no variation


# -- the evaluate stage, on evalgrid's runs with checkpoints written for them -----------------

HPARAMS = {"linear_size": 4, "num_stage": 1, "dropout": 0.0, "activation": "relu",
           "bias_init": "default"}
SEEDS = 2
#: The pre-training each pre-trained run started from, by repetition: not ``rep % SEEDS``, so a
#: reader that guesses the start from the repetition instead of runs.json gets it wrong.
PRETRAIN_SEED = {0: 1, 1: 1, 2: 0}
#: Per setting and repetition, the factor the fine-tuned weights are of their start: the
#: whole model's and every layer's relative change is ``factor - 1``.
FACTOR = {"pct50": [1.01, 1.02, 1.04], "subj2": [1.05, 1.07], "subj8": [1.2]}


def _start_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(100 + seed)
    net = build_lifter("simplebl", **HPARAMS)
    for p in net.parameters():  # starts that differ clearly from each other
        p.data.normal_(0.0, 1.0 + seed)
    return net.state_dict()


def _write_runs(tmp: Path) -> tuple[Path, Path, Path]:
    """evalgrid's grid, its pre-trained simplebl runs recording their pre-training, two
    "No real data" runs (one per pre-training), and the checkpoints; (finetuned root,
    test_npz, pretrained root)."""
    root, test_npz = make_grid(tmp)
    pretrained = tmp / "pretrained_models"
    starts = {j: _start_state(j) for j in range(SEEDS)}
    for j, state in starts.items():
        save_checkpoint(pretrained / "simplebl" / f"seed{j}.pt", "simplebl", HPARAMS, state,
                        {"summary": {"seed": j}})
    for setting, factors in FACTOR.items():
        d = root / "pretrained" / "simplebl" / setting
        runs = json.loads((d / "runs.json").read_text())
        for run in runs:
            rep = run["repetition"]
            run["pretrain_seed"] = PRETRAIN_SEED[rep]
            state = {k: v * factors[rep] if k.endswith(("weight", "bias")) else v + 7.0
                     for k, v in starts[PRETRAIN_SEED[rep]].items()}  # buffers moved: not counted
            save_checkpoint(d / f"run{rep:02d}.pt", "simplebl", HPARAMS, state,
                            {"setting": setting, "init": "pretrained", "repetition": rep})
        (d / "runs.json").write_text(json.dumps(runs))
    none = root / "pretrained" / "simplebl" / "none"
    record = json.loads((none / "runs.json").read_text())[0]
    (none / "runs.json").write_text(json.dumps([{**record, "repetition": j} for j in range(SEEDS)]))
    with np.load(none / "predictions.npz") as z:
        pred = z["pred"]
    np.savez(none / "predictions.npz", pred=np.concatenate([pred] * SEEDS),
             repetition=np.arange(SEEDS))
    return root, test_npz, pretrained


@pytest.fixture(scope="module")
def grid_with_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return _write_runs(tmp_path_factory.mktemp("weights"))


def test_each_run_is_measured_against_the_pretraining_it_started_from(
        grid_with_weights: tuple[Path, Path, Path]) -> None:
    root, _, pretrained = grid_with_weights
    reader = RunWeights(root, pretrained, SEEDS)
    records = json.loads((root / "pretrained" / "simplebl" / "pct50" / "runs.json").read_text())
    got = reader.movements("simplebl", "pct50", records)  # stored in reverse: sorted here
    assert [(m.repetition, m.pretrain_seed) for m in got] == [(0, 1), (1, 1), (2, 0)]
    # float32 checkpoints: the factors hold to float32 rounding
    assert [m.whole for m in got] == pytest.approx([0.01, 0.02, 0.04], abs=1e-6)
    assert len(got[0].layers) == 7  # stem, two residual units, head; batch norms included
    assert got[2].layers == pytest.approx((0.04,) * 7, abs=1e-6)


def test_a_wrong_start_or_a_stale_checkpoint_stops_the_stage(
        grid_with_weights: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, _, pretrained = grid_with_weights
    d = root / "pretrained" / "simplebl" / "subj2"
    records = json.loads((d / "runs.json").read_text())
    with pytest.raises(CabinliftError, match=r"runs\.json: entry 0 key 'pretrain_seed' is 2, "
                                             r"expected an integer from 0 to 1"):
        RunWeights(root, pretrained, SEEDS).movements(
            "simplebl", "subj2", [{**records[0], "pretrain_seed": 2}])
    stale = tmp_path / "pretrained" / "simplebl" / "subj2"
    stale.mkdir(parents=True)
    for rep in (0, 1):  # run 1's checkpoint where run 0's belongs
        (stale / f"run{rep:02d}.pt").write_bytes((d / "run01.pt").read_bytes())
    with pytest.raises(CabinliftError, match=r"run00\.pt: the checkpoint of .*'repetition': 1"):
        RunWeights(tmp_path, pretrained, SEEDS).movements("simplebl", "subj2", records)


def test_the_evaluate_stage_writes_weight_movement(grid_with_weights: tuple[Path, Path, Path],
                                                   tmp_path: Path) -> None:
    root, test_npz, pretrained = grid_with_weights
    out = run_evaluation(
        root, test_npz, ["simplebl"], typed_settings(SETTINGS), tmp_path / "metrics",
        tmp_path / "plots", options(), train_npz=test_npz.with_name("real_train.npz"),
        subsets_dir=test_npz.with_name("subsets"), pretrain_seeds=SEEDS,
        pretrained_models=pretrained)
    d = json.loads(out["summary.json"].read_text())["weight_movement"]
    sb = d["models"]["simplebl"]
    assert [x["name"] for x in sb["layers"]] == [
        "stem.0", "stem.1", "blocks.0.body.0.0", "blocks.0.body.0.1", "blocks.0.body.1.0",
        "blocks.0.body.1.1", "head"]
    assert sb["layers"][1]["type"] == "BatchNorm1d"
    pct50 = sb["cells"]["pct50"]
    assert pct50["runs"] == [{"repetition": 0, "pretrain_seed": 1, "whole": 0.01},
                             {"repetition": 1, "pretrain_seed": 1, "whole": 0.02},
                             {"repetition": 2, "pretrain_seed": 0, "whole": 0.04}]
    assert pct50["whole"] == {"median": 0.02, "q1": 0.015, "q3": 0.03, "min": 0.01,
                              "max": 0.04, "n": 3}
    assert pct50["layers_median"] == [0.02] * 7
    # evalgrid's simplebl: scratch 100, 200, 300 mm vs PT 21 mm on the same subjects
    assert pct50["gain"] == pytest.approx(200.0 - 21.0)
    assert sb["cells"]["subj8"]["whole"]["median"] == 0.2
    assert sb["cells"]["subj2"]["gain"] == pytest.approx((25.0 + 26.0 - 17.0 - 19.0) / 2)
    assert d["spearman_change_vs_gain"] == {"pct50": None, "subj2": None, "subj8": None}
    md = out["table1.md"].read_text()
    assert "| PT SimpleBL | 2.00 % [1.50–3.00]; +179.0 mm | 6.00 % [5.50–6.50]; +7.5 mm | " \
           "20.00 %; +2.0 mm |" in md
    rows = list(csv.DictReader(io.StringIO(out["weight_movement.csv"].read_text())))
    assert [(r["setting"], r["simplebl"], r["simplebl_q1"], r["simplebl_gain"]) for r in rows] \
        == [("pct50", "0.020000", "0.015000", "179.000"), ("subj2", "0.060000", "0.055000",
                                                          "7.500"),
            ("subj8", "0.200000", "0.200000", "2.000")]
    assert out["weight_movement.png"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

