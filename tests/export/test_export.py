"""``cabinlift export``: every lifter as ONNX and TorchScript gives the PyTorch model's poses in
millimetres (to 1e-3 mm, at batch 1 and a large batch), carries its contract, and ``cabinlift
lift`` accepts the file and gives the same poses as the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from cliutil import typed
from driverposes import make_poses

from cabinlift import config
from cabinlift.cli import main
from cabinlift.errors import CabinliftError
from cabinlift.export import contract as cx
from cabinlift.export.export import export_checkpoint
from cabinlift.export.runtime import load_exported
from cabinlift.lift import run_lift
from cabinlift.lifters import REGISTRY, build_lifter
from cabinlift.skeleton import COCO13
from cabinlift.training.checkpoints import save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
PARAMS = typed(config.read_yaml(ROOT / "params.yaml"))
UNIT_MM = 50.0
TOLERANCE_MM = 1e-3
BATCHES = (1, 512)


def _checkpoint(folder: Path, model: str) -> Path:
    """A checkpoint of ``model`` with params.yaml's hyper-parameters and random weights (batch
    norm statistics made non-trivial, so that eval mode matters)."""
    torch.manual_seed(0)
    net = build_lifter(model, **PARAMS.hparams(model))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = folder / model / "run00.pt"
    meta = {"joints": list(COCO13), "target_unit_mm": UNIT_MM, "setting": "subj8",
            "init": "pretrained", "repetition": 0}
    save_checkpoint(path, model, PARAMS.hparams(model), net.state_dict(), meta)
    return path


def _eager(ckpt: Path, x: np.ndarray) -> np.ndarray:
    """The PyTorch model's prediction in mm, computed without the export package."""
    saved = torch.load(ckpt, weights_only=True)
    net = build_lifter(saved["model"], **saved["hparams"])
    net.load_state_dict(saved["state_dict"])
    with torch.no_grad():
        return net.eval()(torch.as_tensor(x)).numpy() * UNIT_MM


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ckpt")
    return {m: _checkpoint(folder, m) for m in REGISTRY}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("model", list(REGISTRY))
def test_the_exported_file_gives_the_pytorch_poses(checkpoints, tmp_path, model, fmt):
    out = tmp_path / f"{model}.{'onnx' if fmt == 'onnx' else 'pt'}"
    export_checkpoint(checkpoints[model], fmt, out)
    exported = load_exported(out)
    for n in BATCHES:
        x = make_poses(n, seed=n)[0].numpy()
        want = _eager(checkpoints[model], x)
        got = exported.predict(x)
        assert got.shape == (n, 13, 3)
        assert np.abs(got - want).max() < TOLERANCE_MM, (model, fmt, n)
        assert np.abs(want).max() > 1.0  # poses in mm, not in training units


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_contract_is_in_the_file(checkpoints, tmp_path, fmt):
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt")
    export_checkpoint(checkpoints["graformer"], fmt, out, min_valid_joints=6)
    doc = load_exported(out).contract
    assert doc["model"] == "graformer" and doc["joints"] == list(COCO13)
    assert doc["hparams"] == PARAMS.hparams("graformer")
    assert [(i["name"], i["shape"]) for i in doc["inputs"]] == [("x2d", ["N", 13, 2])]
    assert doc["inputs"][0]["min_valid_joints"] == 6 and doc["input_kind"] == "normalised"
    assert [o["name"] for o in doc["outputs"]] == ["pose3d_mm"]
    assert "millimetres" in doc["outputs"][0]["meaning"]
    assert doc["run"] == {"init": "pretrained", "setting": "subj8", "repetition": 0}
    if fmt == "onnx":  # readable by onnx alone, as a user without this package reads it
        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert json.loads(props["cabinlift"]) == doc


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_jointformer_error_head_is_exported_on_request(checkpoints, tmp_path, fmt):
    out = tmp_path / ("jf.onnx" if fmt == "onnx" else "jf.pt")
    doc = export_checkpoint(checkpoints["jointformer"], fmt, out, error_head=True)
    assert [o["name"] for o in doc["outputs"]] == ["pose3d_mm", "error_mm"]
    x = make_poses(64)[0].numpy()
    pose, error = load_exported(out).run(x)
    saved = torch.load(checkpoints["jointformer"], weights_only=True)
    net = build_lifter("jointformer", **saved["hparams"])
    net.load_state_dict(saved["state_dict"])
    with torch.no_grad():
        poses, errors = net.eval().forward_all(torch.as_tensor(x))
    assert np.abs(pose - poses[-1].numpy() * UNIT_MM).max() < TOLERANCE_MM
    assert np.abs(error - errors[-1].abs().numpy() * UNIT_MM).max() < TOLERANCE_MM
    with pytest.raises(CabinliftError, match="GraFormer has no error-prediction head"):
        export_checkpoint(checkpoints["graformer"], fmt, tmp_path / "g.onnx", error_head=True)


def _coco(path: Path, n: int) -> Path:
    """COCO-format keypoints in pixels: the normalised test poses placed in a 1280x1024 image."""
    x = make_poses(n, seed=7)[0].numpy()
    xy = np.zeros((n, 17, 2))
    xy[:, :13] = x * 300 + [800, 400]
    xy[:, 13:] = xy[:, 11:13].mean(1, keepdims=True) + [0, 100]
    anns = [{"id": k, "image_id": k, "category_id": 1, "score": 0.9,
             "keypoints": np.concatenate([p, np.ones((17, 1))], 1).ravel().tolist()}
            for k, p in enumerate(xy)]
    path.write_text(json.dumps({"images": [{"id": k, "file_name": f"{k}.png"}
                                           for k in range(n)], "annotations": anns}))
    return path


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_lift_accepts_an_exported_file_and_gives_the_checkpoints_poses(checkpoints, tmp_path,
                                                                       fmt):
    kp = _coco(tmp_path / "kp.json", 40)
    out = tmp_path / ("sb.onnx" if fmt == "onnx" else "sb.pt")
    export_checkpoint(checkpoints["simplebl"], fmt, out)
    a = run_lift(checkpoints["simplebl"], kp, tmp_path / "a.npz")
    b = run_lift(out, kp, tmp_path / "b.npz")
    assert a["lifted"] == b["lifted"] == 40 and b["model"] == "simplebl"
    with np.load(tmp_path / "a.npz") as za, np.load(tmp_path / "b.npz") as zb:
        assert np.abs(za["pose3d"] - zb["pose3d"]).max() < TOLERANCE_MM


def test_an_exported_file_is_not_exported_again(checkpoints, tmp_path):
    out = tmp_path / "m.pt"
    export_checkpoint(checkpoints["semgcn"], "torchscript", out)
    with pytest.raises(CabinliftError, match=f"{out}: already an exported file"):
        export_checkpoint(out, "onnx", tmp_path / "m.onnx")


def test_an_onnx_file_without_the_contract_is_named(checkpoints, tmp_path):
    out = tmp_path / "m.onnx"
    export_checkpoint(checkpoints["semgcn"], "onnx", out)
    model = onnx.load(str(out))
    del model.metadata_props[:]
    onnx.save(model, str(out))
    with pytest.raises(CabinliftError, match=f"{out}: an ONNX file without cabinlift's "
                                             "contract"):
        load_exported(out)


def test_cli_writes_the_file_and_a_model_card_from_the_runs_records(checkpoints, tmp_path,
                                                                    capsys):
    summary = {"test_set": {"frames": 148, "subjects": [11, 12, 13, 14], "valid_joints": 1684},
               "cells": {"graphmlp": {"pretrained": {"subj8": {
                   "label": "Eight subjects", "n_runs": 3, "train_frames": 300.0,
                   "mpjpe": {"mean": 55.4, "std": 1.9, "ci95": 4.7, "n": 3},
                   "p_mpjpe": {"mean": 38.2, "std": 1.0, "ci95": 2.5, "n": 3},
                   "pck": {"mean": 96.1, "std": 0.4, "ci95": 1.0, "n": 3},
                   "auc": {"mean": 60.3, "std": 0.8, "ci95": 2.0, "n": 3},
                   "per_joint": {j: 40.0 + i for i, j in enumerate(COCO13)},
                   "runs": [{"repetition": 0, "subjects": [1, 2, 3, 4, 5, 6, 7, 8],
                             "mpjpe": 54.0, "p_mpjpe": 37.5, "pck": 96.5, "auc": 61.0}]}}}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "graphmlp.onnx"
    assert main(["export", "--checkpoint", str(checkpoints["graphmlp"]), "--format", "onnx",
                 "--out", str(out), "--summary", str(tmp_path / "summary.json"),
                 "--params", str(ROOT / "params.yaml")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["card"] == str(tmp_path / "graphmlp.md")
    card = (tmp_path / "graphmlp.md").read_text()
    assert card.startswith("# Model card: GraphMLP, pre-trained on synthetic poses, then "
                           "fine-tuned")
    assert "| MPJPE [mm] | 54.0 | 55.4 ± 1.9 | 4.7 |" in card
    assert "subjects 1, 2, 3, 4, 5, 6, 7, 8; 300 frames" in card
    assert "| 40 | 41 | 42 |" in card  # per joint
    assert "embedded procedural demo data sets" in card  # params.yaml's roots are the demo's
    assert "| 1 |" in card and "| 64 |" in card  # latency rows
    assert cx.NORMALISATION in card


def _pixel_poses() -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 pixel poses with found flags: 30 plausible ones (one with a wrist not found,
    its coordinates far off), then one without its left shoulder, one with 4 found joints, one
    with every joint on one row (no vertical extent)."""
    x = make_poses(33, seed=3)[0].numpy()
    xy = np.zeros((33, 17, 2))
    xy[:, :13] = x * 300 + [800, 400]
    xy[:, 13:] = xy[:, 11:13].mean(1, keepdims=True) + [0, 100]
    found = np.ones((33, 17))
    found[29, 9], xy[29, 9] = 0, [5000.0, 5000.0]  # a wrist not found: in no extent
    found[30, 5] = 0
    found[31, 4:] = 0
    xy[32, :, 1] = 500.0
    return xy, found


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_file_taking_pixels_normalises_as_the_pipeline_does(checkpoints, tmp_path, fmt):
    from cabinlift.normalize import DROP_REASONS, drop_reasons, joint_checks, normalize_2d

    out = tmp_path / ("px.onnx" if fmt == "onnx" else "px.pt")
    doc = export_checkpoint(checkpoints["graformer"], fmt, out, inputs="pixels")
    assert [i["name"] for i in doc["inputs"]] == ["keypoints", "found"]
    assert [o["name"] for o in doc["outputs"]] == ["pose3d_mm", "liftable"]
    xy, found = _pixel_poses()
    pose, liftable = load_exported(out).predict_pixels(xy, found)
    valid = found[:, :13] > 0
    has_neck, enough = joint_checks(valid, 5)
    x2d, ok2d = normalize_2d(xy[:, :13], valid)
    assert DROP_REASONS  # the rule lift and normalize share
    keep = drop_reasons(has_neck, enough, ok2d) == ""
    assert liftable.tolist() == keep.tolist() == [True] * 30 + [False] * 3
    want = _eager(checkpoints["graformer"], x2d[keep].astype(np.float32))
    assert np.abs(pose[keep] - want).max() < TOLERANCE_MM


def test_lift_feeds_pixels_to_a_file_that_takes_them(checkpoints, tmp_path):
    kp = _coco(tmp_path / "kp.json", 40)
    out = tmp_path / "px.onnx"
    export_checkpoint(checkpoints["jointformer"], "onnx", out, inputs="pixels")
    run_lift(checkpoints["jointformer"], kp, tmp_path / "a.npz")
    run_lift(out, kp, tmp_path / "b.npz")
    with np.load(tmp_path / "a.npz") as za, np.load(tmp_path / "b.npz") as zb:
        assert np.abs(za["pose3d"] - zb["pose3d"]).max() < TOLERANCE_MM
