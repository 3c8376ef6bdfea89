"""``cabinlift lift``: trained checkpoint + 2D keypoints (COCO JSON / interim CSV) -> 3D poses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cliutil import one_line_error, write_params

from cabinlift import config
from cabinlift.cli import main
from cabinlift.errors import CabinliftError
from cabinlift.keypoints.interim import Keypoints2D, write_keypoints
from cabinlift.lift import load_lifter, read_inputs, run_lift
from cabinlift.lifters import build_lifter
from cabinlift.normalize import DEFAULT_MIN_VALID_JOINTS, normalize_2d
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
    flat[:, 2] = 1  # every keypoint labelled (v = 0 would make them all missing)
    anns.append({"id": 98, "image_id": 2, "category_id": 1, "keypoints": flat.ravel().tolist()})
    doc = {"images": [{"id": 1, "file_name": "cam/0001.png"}, {"id": 2, "file_name": "cam/0002.png"}],
           "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    path.write_text(json.dumps(doc))
    return path


def test_coco_json_to_npz_equals_the_model_on_normalised_inputs(checkpoint, tmp_path):
    xy = _poses(3)
    summary = run_lift(checkpoint, _coco(tmp_path / "kp.json", xy), tmp_path / "out.npz")
    assert summary == {"model": "simplebl", "lifted": 3, "skipped": 1,
                       "skipped_by_reason": {"no_neck": 0, "few_valid_joints": 0,
                                             "degenerate_2d": 1},
                       "with_missing_joints": 0, "min_valid_joints": 5,
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


# -- missing keypoints: COCO's unlabelled (x = 0, y = 0, v = 0), a score of 0 ------------------

L_EAR, R_SHOULDER, R_WRIST = 3, 6, 10


def _annotation(xy: np.ndarray, v: np.ndarray, image_id: int = 1) -> dict:
    return {"image_id": image_id, "category_id": 1,
            "keypoints": np.concatenate([xy, v[:, None]], axis=1).ravel().tolist()}


def _lift_cli(checkpoint: Path, src: Path, out: Path, capsys) -> dict:
    """Run ``cabinlift lift`` (no params.yaml in the working folder) and return its summary."""
    assert main(["lift", "--checkpoint", str(checkpoint), "--input", str(src),
                 "--out", str(out)]) == 0
    return json.loads(capsys.readouterr().out)


def _masked_by_hand(ckpt: Path, xy: np.ndarray, found: np.ndarray) -> np.ndarray:
    """What the lifter predicts for one pose whose joints ``~found`` are missing, normalised
    here without the package: neck-centred, divided by the extents of the found joints, the
    missing joints at 0 (the neck)."""
    xy13, f13 = xy[:13], found[:13]
    neck = 0.5 * (xy13[5] + xy13[6])
    extent = xy13[f13].max(axis=0) - xy13[f13].min(axis=0)
    x = np.where(f13[:, None], (xy13 - neck) / extent, 0.0)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    net = build_lifter("simplebl", **HPARAMS)
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        return net(torch.as_tensor(x[None], dtype=torch.float32)).numpy()[0] * UNIT_MM


def test_an_unlabelled_keypoint_is_missing_not_a_point_at_the_origin(checkpoint, tmp_path,
                                                                     monkeypatch, capsys):
    """COCO writes an unlabelled keypoint as (0, 0, v=0): the pose must lift as if the joint
    were not there (where the zeros sit changes nothing), and the output names the joint."""
    monkeypatch.chdir(tmp_path)
    xy = _poses(1, seed=7)[0]
    v = np.full(17, 2.0)
    v[L_EAR] = 0
    zeroed = xy.copy()
    zeroed[L_EAR] = 0.0
    labelled_occluded = np.where(np.arange(17) == L_EAR, 1.0, 2.0)  # v = 1 is a found keypoint
    doc = {"annotations": [_annotation(zeroed, v), _annotation(xy, v),
                           _annotation(xy, labelled_occluded)]}
    (tmp_path / "kp.json").write_text(json.dumps(doc))
    summary = _lift_cli(checkpoint, tmp_path / "kp.json", tmp_path / "out.npz", capsys)
    expected = _masked_by_hand(checkpoint, xy, v > 0)
    with np.load(tmp_path / "out.npz") as z:
        np.testing.assert_array_equal(z["pose3d"][0], z["pose3d"][1])
        np.testing.assert_allclose(z["pose3d"][0], expected, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(z["pose3d"][2], _expected(checkpoint, xy[None])[0],
                                   rtol=1e-5, atol=1e-3)
        assert z["x2d"][0, L_EAR].tolist() == [0.0, 0.0]
        assert z["missing"].shape == (3, 13) and z["missing"].dtype == bool
        assert z["missing"][0].tolist() == [j == L_EAR for j in range(13)]
        assert not z["missing"][2].any()
    assert (summary["lifted"], summary["skipped"], summary["with_missing_joints"]) == (3, 0, 2)
    _lift_cli(checkpoint, tmp_path / "kp.json", tmp_path / "out.json", capsys)
    poses = json.loads((tmp_path / "out.json").read_text())["poses"]
    assert [p["missing"] for p in poses] == [["l_ear"], ["l_ear"], []]
    assert poses[0]["pose3d"] == poses[1]["pose3d"]


def test_a_keypoint_score_of_zero_is_missing_in_results_and_interim_csvs(checkpoint, tmp_path,
                                                                          monkeypatch, capsys):
    """A results list's third value is a score: 0 is a keypoint not found, lifted as COCO's
    v = 0. An interim CSV says so by leaving the keypoint without coordinates (what the
    precomputed backend writes for it); a keypoint placed there is used whatever its score,
    exactly as the normalize stage uses it."""
    monkeypatch.chdir(tmp_path)
    xy = np.round(_poses(1, seed=8)[0], 3)  # as an interim CSV stores it
    score = np.full(17, 0.8)
    score[R_WRIST] = 0.0
    nowhere = xy.copy()
    nowhere[R_WRIST] = 0.0
    (tmp_path / "res.json").write_text(json.dumps([{**_annotation(nowhere, score), "score": 0.7}]))
    unplaced = np.where((score > 0)[:, None], xy, np.nan)
    csvs = {}
    for name, points in (("missing", unplaced), ("placed", xy)):
        csvs[name] = tmp_path / name / "vp1" / "run1.ids_1.keypoints2d.csv"
        write_keypoints(csvs[name], Keypoints2D(
            frame_id=np.array([0, 15]), detected=np.array([True, False]),
            xy=np.stack([points, np.full((17, 2), np.nan)]),
            scores=np.stack([score, np.full(17, np.nan)])))
    expected = _masked_by_hand(checkpoint, xy, score > 0)
    for src in (tmp_path / "res.json", csvs["missing"]):
        summary = _lift_cli(checkpoint, src, tmp_path / "out.npz", capsys)
        with np.load(tmp_path / "out.npz") as z:
            np.testing.assert_allclose(z["pose3d"][0], expected, rtol=1e-5, atol=1e-3)
            assert z["missing"][0].tolist() == [j == R_WRIST for j in range(13)]
        assert (summary["lifted"], summary["with_missing_joints"]) == (1, 1)
    summary = _lift_cli(checkpoint, csvs["placed"], tmp_path / "out.npz", capsys)
    with np.load(tmp_path / "out.npz") as z:
        np.testing.assert_allclose(z["pose3d"][0], _masked_by_hand(checkpoint, xy, np.ones(17, bool)),
                                   rtol=1e-5, atol=1e-3)
        assert not z["missing"][0].any()
    assert (summary["lifted"], summary["with_missing_joints"]) == (1, 0)


def test_poses_the_normalize_stage_would_drop_are_skipped_with_their_reason(
        checkpoint, tmp_path, monkeypatch, capsys):
    """Too few keypoints found (below ``normalize.min_valid_joints``, 5 without a params.yaml)
    or a shoulder missing (no neck): skipped, counted by reason, and listed in the JSON."""
    monkeypatch.chdir(tmp_path)
    xy = _poses(1, seed=9)[0]
    few = np.zeros(17)
    few[[0, 5, 6, 7]] = 2  # nose, both shoulders, one elbow: 4 of 13
    enough = few.copy()
    enough[8] = 2  # and the other elbow: 5
    no_shoulder = np.full(17, 2.0)
    no_shoulder[R_SHOULDER] = 0
    doc = {"annotations": [_annotation(xy, few, 1), _annotation(xy, enough, 2),
                           _annotation(xy, no_shoulder, 3)]}
    (tmp_path / "kp.json").write_text(json.dumps(doc))
    summary = _lift_cli(checkpoint, tmp_path / "kp.json", tmp_path / "out.json", capsys)
    assert summary == {"model": "simplebl", "lifted": 1, "skipped": 2,
                       "skipped_by_reason": {"no_neck": 1, "few_valid_joints": 1,
                                             "degenerate_2d": 0},
                       "with_missing_joints": 1, "min_valid_joints": 5,
                       "out": str(tmp_path / "out.json")}
    out = json.loads((tmp_path / "out.json").read_text())
    assert [(p["image_id"], p["instance"]) for p in out["poses"]] == [("2", 1)]
    np.testing.assert_allclose(out["poses"][0]["pose3d"],
                               _masked_by_hand(checkpoint, xy, enough > 0), atol=2e-3)
    assert [(p["instance"], p["reason"]) for p in out["skipped_poses"]] == [
        (0, "few_valid_joints"), (2, "no_neck")]
    assert out["skipped_poses"][1]["missing"] == ["r_shoulder"]


def test_lift_takes_the_floor_of_the_params_file_it_finds(checkpoint, tmp_path, monkeypatch,
                                                          capsys):
    """With a params.yaml in the working folder, ``normalize.min_valid_joints`` is its value;
    without one, the default, which is the committed params.yaml's."""
    root = Path(__file__).resolve().parents[1]
    params = config.read_yaml(root / "params.yaml")
    assert params["normalize"]["min_valid_joints"] == DEFAULT_MIN_VALID_JOINTS
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", params, **{"normalize.min_valid_joints": 4})
    few = np.zeros(17)
    few[[0, 5, 6, 7]] = 2
    (tmp_path / "kp.json").write_text(json.dumps([_annotation(_poses(1)[0], few)]))
    summary = _lift_cli(checkpoint, tmp_path / "kp.json", tmp_path / "out.npz", capsys)
    assert (summary["lifted"], summary["min_valid_joints"]) == (1, 4)


# -- interim CSVs: a recording with no sampled frame, bytes that are not UTF-8 -----------------

def _interim(path: Path, n: int, seed: int = 3) -> Path:
    xy = _poses(n, seed=seed)
    write_keypoints(path, Keypoints2D(frame_id=np.arange(n, dtype=np.int64) * 15,
                                      detected=np.ones(n, bool), xy=xy,
                                      scores=np.full((n, 17), 0.8)))
    return path


def test_a_header_only_interim_csv_gives_no_pose(checkpoint, tmp_path, capsys):
    """The keypoints2d stage writes a header and no row for a recording none of whose frames
    is sampled: a valid file holding no pose. Alone, there is nothing to lift: an error."""
    root = tmp_path / "keypoints2d"
    empty = _interim(root / "vp1" / "short.ids_1.keypoints2d.csv", 0)
    assert empty.read_text().count("\n") == 1
    _interim(root / "vp2" / "run1.ids_1.keypoints2d.csv", 2)
    summary = _lift_cli(checkpoint, root, tmp_path / "out.npz", capsys)
    assert (summary["lifted"], summary["skipped"]) == (2, 0)
    with np.load(tmp_path / "out.npz") as z:
        assert z["file_id"].tolist() == ["vp2/run1.ids_1"] * 2
    argv = ["lift", "--checkpoint", str(checkpoint), "--input", str(empty),
            "--out", str(tmp_path / "alone.npz")]
    assert one_line_error(capsys, argv) == (
        f"cabinlift lift: error: {empty}: no 2D poses to lift (no person entry / detected frame)")
    assert not (tmp_path / "alone.npz").exists()


def test_an_interim_csv_with_bytes_that_are_not_utf8_is_named(checkpoint, tmp_path, capsys):
    src = _interim(tmp_path / "run1.ids_1.keypoints2d.csv", 2)
    src.write_bytes(src.read_bytes() + b"\x00\x00\xff\xfe\n")
    argv = ["lift", "--checkpoint", str(checkpoint), "--input", str(src),
            "--out", str(tmp_path / "out.npz")]
    assert one_line_error(capsys, argv) == (
        f"cabinlift lift: error: {src}: line 4: not UTF-8 text (byte 0xff at column 3); "
        "expected comma-separated values of an interim keypoints2d CSV "
        "(frame_id,detected,nose_x,...)")
    assert not (tmp_path / "out.npz").exists()


# -- --out where no file can be written ---------------------------------------------------------

@pytest.mark.parametrize("below", ["notes.txt", "notes.txt/sub"])
def test_out_below_an_existing_file_names_the_file(checkpoint, tmp_path, capsys, below):
    (tmp_path / "notes.txt").write_text("my notes\n")
    src = _coco(tmp_path / "kp.json", _poses(2))
    out = tmp_path / below / "lifted.npz"
    argv = ["lift", "--checkpoint", str(checkpoint), "--input", str(src), "--out", str(out)]
    assert one_line_error(capsys, argv) == (
        f"cabinlift lift: error: {out}: cannot be written: {tmp_path / 'notes.txt'} is a file, "
        "not a folder; expected a folder or a name that does not exist yet (it is then created)")
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"


def test_out_naming_an_existing_folder_is_an_error(checkpoint, tmp_path, capsys):
    folder = tmp_path / "lifted.json"
    folder.mkdir()
    src = _coco(tmp_path / "kp.json", _poses(2))
    argv = ["lift", "--checkpoint", str(checkpoint), "--input", str(src), "--out", str(folder)]
    assert one_line_error(capsys, argv) == (
        f"cabinlift lift: error: {folder}: cannot be written: it is a folder; expected a file "
        "name (an existing file is replaced)")
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "kp.json", "lifted.json", "run00.pt"]
