"""``cabinlift lift``: trained checkpoint + 2D keypoints (COCO JSON / interim CSV) -> 3D poses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cliutil import one_line_error

from cabinlift.cli import main
from cabinlift.errors import CabinliftError
from cabinlift.keypoints.interim import Keypoints2D, write_keypoints
from cabinlift.lift import load_lifter, read_inputs, run_lift
from cabinlift.lifters import build_lifter
from cabinlift.normalize import normalize_2d
from cabinlift.training.checkpoints import save_checkpoint
from cabinlift.training.outputs import checkpoint_meta
from cabinlift.training.recipe import Recipe

HPARAMS = {"linear_size": 32, "num_stage": 1, "dropout": 0.0}
UNIT_MM = 1000.0


def _recipe(unit: float = UNIT_MM) -> Recipe:
    return Recipe(lr=1e-3, lr_decay=0.95, batch_size=8, grad_clip=1.0, max_epochs=1,
                  val_every=1, patience=1, target_unit_mm=unit)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = build_lifter("simplebl", **HPARAMS)
    path = tmp_path / "run00.pt"
    save_checkpoint(path, "simplebl", HPARAMS, net.state_dict(),
                    checkpoint_meta(_recipe(), setting="subj1", init="scratch", repetition=0))
    return path


def _poses(n: int, seed: int = 1) -> np.ndarray:
    """Plausible COCO-17 pixel poses (a rough upper body around (320, 240))."""
    rng = np.random.default_rng(seed)
    base = np.array([[320, 150], [330, 140], [310, 140], [345, 145], [295, 145],
                     [370, 220], [270, 220], [390, 300], [250, 300], [380, 370], [260, 370],
                     [355, 390], [285, 390], [355, 470], [285, 470], [355, 550], [285, 550]],
                    dtype=np.float64)
    return base + rng.normal(0, 6, size=(n, 17, 2))


def _expected(ckpt: Path, xy: np.ndarray) -> np.ndarray:
    """What the lifter predicts for pixel poses, computed without the lift module."""
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    net = build_lifter("simplebl", **HPARAMS)
    net.load_state_dict(state)
    net.eval()
    x, ok = normalize_2d(xy[:, :13])
    assert ok.all()
    with torch.no_grad():
        return net(torch.as_tensor(x, dtype=torch.float32)).numpy() * UNIT_MM


def _coco(path: Path, xy: np.ndarray) -> Path:
    anns = [
        {"id": 10 + k, "image_id": 1 + k // 2, "category_id": 1, "score": 0.9 - 0.1 * k,
         "keypoints": np.concatenate([p, np.ones((17, 1))], axis=1).ravel().tolist()}
        for k, p in enumerate(xy)
    ]
    anns.append({"id": 99, "image_id": 1, "category_id": 3, "keypoints": [0] * 51})  # a car
    flat = np.zeros((17, 3))
    flat[:, 0] = np.arange(17)  # all on one row: no vertical extent, cannot be normalised
    anns.append({"id": 98, "image_id": 2, "category_id": 1, "keypoints": flat.ravel().tolist()})
    doc = {"images": [{"id": 1, "file_name": "cam/0001.png"}, {"id": 2, "file_name": "cam/0002.png"}],
           "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    path.write_text(json.dumps(doc))
    return path


def test_coco_json_to_npz_equals_the_model_on_normalised_inputs(checkpoint, tmp_path):
    xy = _poses(3)
    summary = run_lift(checkpoint, _coco(tmp_path / "kp.json", xy), tmp_path / "out.npz")
    assert summary == {"model": "simplebl", "lifted": 3, "skipped": 1,
                       "out": str(tmp_path / "out.npz")}
    with np.load(tmp_path / "out.npz") as z:
        np.testing.assert_allclose(z["pose3d"], _expected(checkpoint, xy), rtol=1e-5, atol=1e-3)
        assert z["pose3d"].shape == (3, 13, 3) and z["pose3d"].dtype == np.float32
        assert z["image_id"].tolist() == ["1", "1", "2"]
        assert z["file_name"].tolist() == ["cam/0001.png", "cam/0001.png", "cam/0002.png"]
        assert z["instance"].tolist() == [0, 1, 2]
        assert z["joints"].tolist()[:2] == ["nose", "l_eye"]


def test_json_output_holds_the_same_poses(checkpoint, tmp_path):
    xy = _poses(3)
    src = _coco(tmp_path / "kp.json", xy)
    run_lift(checkpoint, src, tmp_path / "out.json")
    doc = json.loads((tmp_path / "out.json").read_text())
    assert (doc["model"], doc["skipped"], len(doc["poses"])) == ("simplebl", 1, 3)
    first = doc["poses"][0]
    assert (first["image_id"], first["file_name"], first["score"]) == ("1", "cam/0001.png", 0.9)
    np.testing.assert_allclose(np.array([p["pose3d"] for p in doc["poses"]]),
                               _expected(checkpoint, xy), atol=2e-3)


def test_interim_directory_lifts_detected_frames_with_their_ids(checkpoint, tmp_path):
    root = tmp_path / "keypoints2d"
    xy = _poses(5, seed=4)
    for k, fid in enumerate(("vp11/run1.ids_1", "vp12/run2.ids_1")):
        det = np.array([True, False, True]) if k == 0 else np.array([True, True])
        n = len(det)
        pts = np.where(det[:, None, None], xy[:n] + k, np.nan)
        write_keypoints(root / f"{fid}.keypoints2d.csv", Keypoints2D(
            frame_id=np.arange(n, dtype=np.int64) * 15, detected=det, xy=pts,
            scores=np.where(det[:, None], 0.8, np.nan) * np.ones((n, 17)),
        ))
    run_lift(checkpoint, root, tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as z:
        assert z["file_id"].tolist() == ["vp11/run1.ids_1"] * 2 + ["vp12/run2.ids_1"] * 2
        assert z["frame_id"].tolist() == [0, 30, 0, 15]
        # CSVs store 3 decimals: the lift sees the rounded pixels
        one = read_inputs(root / "vp12/run2.ids_1.keypoints2d.csv")
        np.testing.assert_allclose(z["pose3d"][2:], _expected(checkpoint, one.xy), atol=1e-3)


def test_cli_works_without_a_params_file(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    src = _coco(tmp_path / "kp.json", _poses(2))
    rc = main(["lift", "--checkpoint", str(checkpoint), "--input", str(src), "--out", "o.json"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["lifted"] == 2


def test_weights_that_do_not_fit_the_architecture_are_named(checkpoint, tmp_path):
    ckpt = torch.load(checkpoint, weights_only=True)
    ckpt["hparams"] = {**HPARAMS, "linear_size": 48}  # claims another width
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    with pytest.raises(CabinliftError, match=r"bad.pt: weights do not fit simplebl"):
        load_lifter(bad)


def test_checkpoint_without_unit_is_an_error(checkpoint, tmp_path):
    ckpt = torch.load(checkpoint, weights_only=True)
    del ckpt["meta"]["target_unit_mm"]
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    with pytest.raises(CabinliftError, match=r"old.pt: the checkpoint does not record its output "
                                             r"unit \('target_unit_mm'\); re-run the stage"):
        load_lifter(old)


def _file(path: Path, text: str | None) -> Path:
    if text is None:
        path.mkdir()
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("k.json", '{"annotations": [{"keypoints": [1, 2]}]}',
         r"k.json: annotations\[0\]: key 'keypoints' must hold 17"),
        ("k.json", "[1, 2", "k.json: line 1: not valid JSON"),
        ("k.txt", "x", "k.txt: expected COCO-format"),
        ("empty", None, r"empty: no \*.keypoints2d.csv files"),
    ],
)
def test_bad_inputs_are_named(checkpoint, tmp_path, name, text, needle):
    with pytest.raises(CabinliftError, match=needle):
        run_lift(checkpoint, _file(tmp_path / name, text), tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()
    with pytest.raises(CabinliftError, match="missing.json: file not found"):
        run_lift(checkpoint, tmp_path / "missing.json", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_bad_output_suffix_and_missing_checkpoint(checkpoint, tmp_path):
    with pytest.raises(CabinliftError, match=r"out.csv: the output must end in .npz or .json"):
        run_lift(checkpoint, tmp_path, tmp_path / "out.csv")
    with pytest.raises(CabinliftError, match="nope.pt: checkpoint not found"):
        run_lift(tmp_path / "nope.pt", tmp_path, tmp_path / "out.npz")


CATEGORY = ("key 'category_id' must be an integer category id (COCO's person is 1; without the "
            "key an entry is a person), got {}")


@pytest.mark.parametrize("value, shown", [("person", "'person'"), (None, "None"), (1.5, "1.5"),
                                          (True, "True")])
def test_a_category_id_that_is_not_an_integer_is_named(checkpoint, tmp_path, capsys, value, shown):
    doc = json.loads(_coco(tmp_path / "kp.json", _poses(3)).read_text())
    doc["annotations"][2]["category_id"] = value
    (tmp_path / "kp.json").write_text(json.dumps(doc))
    argv = ["lift", "--checkpoint", str(checkpoint), "--input", str(tmp_path / "kp.json"),
            "--out", str(tmp_path / "out.npz")]
    assert one_line_error(capsys, argv) == (
        f"cabinlift lift: error: {tmp_path / 'kp.json'}: annotations[2]: {CATEGORY.format(shown)}")
    assert not (tmp_path / "out.npz").exists()


def test_an_entry_without_category_id_is_a_person(checkpoint, tmp_path):
    doc = json.loads(_coco(tmp_path / "kp.json", _poses(3)).read_text())
    del doc["annotations"][0]["category_id"]
    (tmp_path / "kp.json").write_text(json.dumps(doc))
    assert run_lift(checkpoint, tmp_path / "kp.json", tmp_path / "out.npz")["lifted"] == 3


def test_device_errors_name_the_option(checkpoint, tmp_path, capsys):
    """The device comes from the command line here, not from params.yaml."""
    src = _coco(tmp_path / "kp.json", _poses(2))
    argv = ["lift", "--checkpoint", str(checkpoint), "--input", str(src), "--out",
            str(tmp_path / "out.npz"), "--device"]
    assert one_line_error(capsys, argv + ["foo"]) == (
        "cabinlift lift: error: option --device: unknown device 'foo' (expected cpu, cuda, "
        "cuda:N or auto)")
    if not torch.cuda.is_available():
        assert one_line_error(capsys, argv + ["cuda"]) == (
            "cabinlift lift: error: option --device asks for CUDA ('cuda'), which is not "
            "available on this machine")
    else:
        n = torch.cuda.device_count()
        assert one_line_error(capsys, argv + [f"cuda:{n}"]) == (
            f"cabinlift lift: error: option --device asks for 'cuda:{n}', but this machine has "
            f"{n} CUDA device(s) (cuda:0 ...)")


def test_a_directory_as_checkpoint_is_named(tmp_path, capsys):
    folder = _file(tmp_path / "subj4", None)
    src = _coco(tmp_path / "kp.json", _poses(2))
    assert one_line_error(capsys, ["lift", "--checkpoint", str(folder), "--input", str(src),
                                   "--out", str(tmp_path / "out.npz")]) == (
        f"cabinlift lift: error: {folder}: is a directory; expected a checkpoint file (.pt) "
        "written by pretrain or finetune, e.g. models/finetuned/<init>/<model>/<setting>/run00.pt")


def test_the_training_stages_name_their_params_key():
    from cabinlift.training.data import resolve_device

    with pytest.raises(CabinliftError, match=r"^params.yaml: key 'train.device': unknown device "
                                             r"'foo' \(expected cpu, cuda, cuda:N or auto\)$"):
        resolve_device("foo")
    assert resolve_device("cpu") == torch.device("cpu")
