"""The "What happens when..." table of docs/operations.md, produced here: every row is a bad input (params,
raw files, processed arrays, checkpoints, interrupted runs) given to the real command, and the
row's message is what that command printed (paths relative to the project folder, run-store
keys and wall times masked). The test fails when a message and its table row differ;
``python tests/test_what_happens.py`` prints the table as the code produces it now.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cliutil import with_changes
from fullfs import fill, small_tmpfs
from realformat import build
from tinydata import write_processed

from cabinlift import cli
from cabinlift.formats.drive_act import discover_recordings
from cabinlift.keypoints.interim import Keypoints2D, write_keypoints
from cabinlift.skeleton import COCO17

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "docs" / "operations.md"
HEADING = "## What happens when…"
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
TINY_SIMPLEBL = {"linear_size": 32, "num_stage": 1, "dropout": 0.5, "activation": "relu",
                 "bias_init": "default"}
TINY_GRAFORMER = {"dim_model": 16, "n_layers": 1, "n_head": 4, "dropout": 0.0,
                  "attn_dropout": 0.0, "gcn_dropout": 0.0, "cheb_order": 2, "graph": "coco15",
                  "deepcopy_init": False}


def _params(**changes) -> dict:
    """The repository's params with small lifters, a short recipe and ``changes`` (dotted)."""
    p = copy.deepcopy(PARAMS)
    p["lifters"]["simplebl"] = dict(TINY_SIMPLEBL)
    p["lifters"]["graformer"] = dict(TINY_GRAFORMER)
    p["train"].update(max_epochs=2, val_every=1, device="cpu")
    p["pretrain"]["seeds"] = 1
    return with_changes(p, **changes)


def _write(params: dict) -> None:
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _run(argv: list[str]) -> tuple[int, str]:
    """``cabinlift <argv>`` in this process: exit status and what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli.main(argv)
    return status, err.getvalue()


def _error(argv: list[str]) -> str:
    """The error a failing command prints (its first line and the list under it)."""
    status, err = _run(argv)
    assert status == 1, err
    lines = err.replace("\r", "\n").splitlines()
    start = next(i for i, line in enumerate(lines) if ": error: " in line)
    out = [lines[start]]
    out += [line for line in lines[start + 1:] if line.startswith("  - ")]
    return "\n".join(out)


def _processed(params: dict) -> None:
    write_processed(Path("data/processed"), params, Path("data/subsets"))


def _finetune(init: str = "scratch", model: str = "simplebl", setting: str = "pct25") -> list[str]:
    argv = ["finetune", "--model", model, "--init", init, "--setting", setting]
    if init == "pretrained":
        argv += ["--pretrained", f"models/pretrained/{model}"]
    return argv


# -- params ------------------------------------------------------------------------------------

def several_param_problems() -> str:
    p = _params(**{"train.lr": -0.001, "models": ["simplebl", "posenet"],
                   "subsets.settings.pct5.fraction": 1.5})
    p["train"]["learning_rate"] = 0.001
    _write(p)
    return _error(["subsets"])


def _check(params_file: str = "params.yaml") -> str:
    """The ``check`` stage, which ``dvc repro`` runs before any other stage, in a checkout of
    the pipeline (its dvc.yaml names the folder the demo stage writes)."""
    shutil.copy(ROOT / "dvc.yaml", "dvc.yaml")
    return _error(["--params", params_file, "check", "--out", "data/inputs"])


def unknown_top_level_key() -> str:
    p = _params()
    p["evaluat"] = {"alpha": 0.1}
    _write(p)
    return _check()


def models_names_an_unknown_lifter() -> str:
    _write(_params(models=["simplebl", "semgcm"]))
    return _check()


def bad_value_under_dvc_repro() -> str:
    _write(_params(**{"train.lr": -0.001}))
    return _check()


def batch_of_one() -> str:
    _write(_params(**{"train.batch_size": 1}))
    return _check()


def split_names_a_human_the_data_lacks() -> str:
    _write(_params(**{"normalize.synthetic_splits.val": ["human_9", "human_10", "human_11",
                                                         "human_12"]}))
    return _check()


def cuda_on_a_machine_without_one() -> str:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: train.device cuda works")
    Path("mine.yaml").write_text(yaml.safe_dump(_params(**{"train.device": "cuda"}),
                                                sort_keys=False))
    return _check("mine.yaml")


def example_frame_not_sampled() -> str:
    from cabinlift.config import build
    from cabinlift.demo.generate import recordings

    p = _params()
    test_file = next(f for f, (s, _) in recordings(build(p).demo).items() if s == 11)
    _write(with_changes(p, **{"evaluate.qualitative.file_id": test_file,
                              "evaluate.qualitative.frame_id": 31}))
    return _check()


def real_root_missing() -> str:
    _write(_params(**{"data.real.root": "data/raw/drive_and_act"}))
    return _check()


def real_root_is_a_full_copy() -> str:
    root = Path("data/raw/drive_and_act")
    (root / "openpose_3d").mkdir(parents=True)
    (root / "kinect_color" / "vp1").mkdir(parents=True)
    (root / "kinect_color" / "vp1" / "run1.mp4").write_bytes(b"\0" * 1000)
    _write(_params(**{"data.real.root": str(root)}))
    return _check()


def demo_without_a_pretraining_view() -> str:
    _write(_params(**{"demo.synthetic.views": ["OMS_01", "Dashboard"]}))
    return _check()


def graformer_heads_do_not_divide_width() -> str:
    _write(_params(**{"lifters.graformer.dim_model": 100, "lifters.graformer.n_head": 8}))
    return _error(["pretrain", "--model", "graformer"])


def setting_needs_more_subjects_than_the_split_has() -> str:
    _write(_params(**{"normalize.real_splits.train": [1, 2, 3],
                      "settings": ["subj2", "subj4", "subj8"]}))
    return _error(["normalize"])


def single_subject_setting_repeats_more_often_than_there_are_subjects() -> str:
    _write(_params(**{"normalize.real_splits.train": [1, 5, 6, 7, 8], "settings": ["pct5"]}))
    return _error(["subsets"])


# -- raw files ---------------------------------------------------------------------------------

def _raw(real_root: Path, **changes) -> None:
    shutil.copytree(real_root, "data/raw", dirs_exist_ok=True)
    p = _params(**{"data.real.root": "data/raw/drive_and_act", "data.real.frame_stride": 5,
                   "data.synthetic.root": "data/raw/synthetic_cabin",
                   "data.synthetic.workers": 1, "data.synthetic.cache_dir": None,
                   "normalize.real_splits": {"train": [1, 2], "val": [3], "test": [4]},
                   "normalize.synthetic_splits": {"train": ["human_01", "human_02"],
                                                  "val": ["human_03"], "test": ["human_04"]},
                   "settings": ["pct5", "pct10", "pct25", "pct50", "subj1"], **changes})
    for name in p["settings"]:
        p["subsets"]["settings"][name]["repetitions"] = 2  # one per training subject
    _write(p)


def missing_openpose_folder(raw: Path) -> str:
    _raw(raw)
    shutil.rmtree("data/raw/drive_and_act/openpose_3d")
    return _error(["detect"])


def pose_csv_cut_mid_row(raw: Path) -> str:
    _raw(raw)
    csv = discover_recordings(Path("data/raw/drive_and_act"))[0].pose3d_path
    text = csv.read_text()
    csv.write_text(text[: len(text) - 200])
    return _error(["detect"])


def pose_csv_without_a_joint_column(raw: Path) -> str:
    _raw(raw)
    csv = discover_recordings(Path("data/raw/drive_and_act"))[2].pose3d_path
    rows = [line.split(",") for line in csv.read_text().splitlines()]
    drop = rows[0].index("lWrist_x")
    csv.write_text("\n".join(",".join(v for i, v in enumerate(r) if i != drop) for r in rows))
    return _error(["detect"])


def pose_csv_with_bytes_that_are_not_utf8(raw: Path) -> str:
    _raw(raw)
    csv = discover_recordings(Path("data/raw/drive_and_act"))[1].pose3d_path
    with open(csv, "ab") as f:
        f.write(b"\x00\x00\xff\xfe")
    return _error(["detect"])


def subject_with_fewer_frames_than_a_run_needs(raw: Path) -> str:
    _raw(raw, **{"data.real.frame_stride": 100000})
    for stage in ("detect", "keypoints2d", "normalize"):
        assert _run([stage])[0] == 0, stage
    return _error(["subsets"])


def synthetic_json_with_16_keypoints(raw: Path) -> str:
    _raw(raw)
    assert _run(["detect"])[0] == 0 and _run(["keypoints2d"])[0] == 0
    victim = sorted(Path("data/raw/synthetic_cabin/gt_jsons").rglob("*Front*.json"))[-1]
    doc = json.loads(victim.read_text())
    doc["humans"][0]["keypoints2D"] = doc["humans"][0]["keypoints2D"][:16]
    victim.write_text(json.dumps(doc))
    return _error(["normalize"])


# -- processed arrays and subsets -----------------------------------------------------------------

def nan_in_processed_2d() -> str:
    p = _params()
    _write(p)
    _processed(p)
    with np.load("data/processed/real_train.npz") as f:
        arrays = dict(f)
    arrays["x2d"][17, 9] = np.nan
    np.savez("data/processed/real_train.npz", **arrays)
    return _error(["subsets"])


def processed_file_cut_by_a_killed_writer() -> str:
    p = _params()
    _write(p)
    _processed(p)
    path = Path("data/processed/real_val.npz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return _error(_finetune())


def subset_from_another_training_split() -> str:
    p = _params()
    _write(p)
    _processed(p)
    doc = json.loads(Path("data/subsets/pct25.json").read_text())
    doc["runs"][2]["indices"].append(5000)
    Path("data/subsets/pct25.json").write_text(json.dumps(doc))
    return _error(_finetune())


# -- checkpoints -------------------------------------------------------------------------------

def _pretrained(model: str, hparams: dict) -> None:
    p = _params(**{f"lifters.{model}": hparams})
    _write(p)
    _processed(p)
    assert _run(["pretrain", "--model", model])[0] == 0


def pretrained_graformer_of_another_width() -> str:
    _pretrained("graformer", TINY_GRAFORMER)
    _write(_params(**{"lifters.graformer.dim_model": 32}))
    return _error(_finetune("pretrained", "graformer"))


def pretrained_weights_with_nan() -> str:
    _pretrained("simplebl", TINY_SIMPLEBL)
    path = Path("models/pretrained/simplebl/seed0.pt")
    ckpt = torch.load(path, weights_only=True)
    next(iter(ckpt["state_dict"].values()))[0] = float("nan")
    torch.save(ckpt, path)
    return _error(_finetune("pretrained"))


def checkpoint_cut_by_a_killed_writer() -> str:
    _pretrained("simplebl", TINY_SIMPLEBL)
    path = Path("models/pretrained/simplebl/seed0.pt")
    path.write_bytes(path.read_bytes()[:4000])
    Path("pose.json").write_text(json.dumps({"annotations": []}))
    return _error(["lift", "--checkpoint", str(path), "--input", "pose.json",
                   "--out", "lifted.npz"])


def _untrained_checkpoint() -> Path:
    """A checkpoint as pretrain writes it (weights not trained: lift only needs the format)."""
    from cabinlift.lifters import build_lifter
    from cabinlift.training.checkpoints import save_checkpoint
    from cabinlift.training.outputs import checkpoint_meta
    from cabinlift.training.recipe import Recipe

    recipe = Recipe(lr=1e-3, lr_decay=0.95, batch_size=8, grad_clip=1.0, max_epochs=1,
                    val_every=1, patience=1, target_unit_mm=1000.0)
    path = Path("models/pretrained/simplebl/seed0.pt")
    save_checkpoint(path, "simplebl", TINY_SIMPLEBL, build_lifter("simplebl", **TINY_SIMPLEBL)
                    .state_dict(), checkpoint_meta(recipe))
    return path


def _coco_json(category_id: object = 1) -> Path:
    keypoints = [v for j in range(17) for v in (300 + 10 * j, 200 + 15 * j, 0.9)]
    doc = {"images": [{"id": 1, "file_name": "cam/000001.png"}],
           "annotations": [{"image_id": 1, "category_id": 1, "score": 0.9, "keypoints": keypoints},
                           {"image_id": 1, "category_id": category_id, "score": 0.8,
                            "keypoints": keypoints}]}
    Path("pose.json").write_text(json.dumps(doc))
    return Path("pose.json")


def lift_coco_category_id_is_a_name() -> str:
    return _error(["lift", "--checkpoint", str(_untrained_checkpoint()),
                   "--input", str(_coco_json("person")), "--out", "lifted.npz"])


_UNLABELLED = ("l_ear", "r_ear")  # COCO writes them as x = 0, y = 0, v = 0
_FOUR_FOUND = ("nose", "l_shoulder", "r_shoulder", "l_elbow")  # below min_valid_joints (5)


def _summary(argv: list[str]) -> str:
    """The summary line a successful ``cabinlift <argv>`` prints (its standard output)."""
    out = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(out):
        status = cli.main(argv)
    assert status == 0, out.getvalue()
    return out.getvalue().strip()


def lift_coco_with_unlabelled_keypoints() -> str:
    """Not an error: the first person's ears are unlabelled (lifted without them, and named in
    the output's ``missing``); the second has only four keypoints labelled (skipped,
    ``few_valid_joints``). What the command prints is its summary line."""
    doc = json.loads(_coco_json().read_text())
    first, second = doc["annotations"]
    kp = np.asarray(first["keypoints"], dtype=float).reshape(17, 3)
    for name in _UNLABELLED:
        kp[COCO17.index(name)] = 0.0
    first["keypoints"] = kp.ravel().tolist()
    kp = np.asarray(second["keypoints"], dtype=float).reshape(17, 3)
    kp[[COCO17.index(n) for n in COCO17 if n not in _FOUR_FOUND]] = 0.0
    second["keypoints"] = kp.ravel().tolist()
    Path("pose.json").write_text(json.dumps(doc))
    return _summary(["lift", "--checkpoint", str(_untrained_checkpoint()),
                     "--input", "pose.json", "--out", "lifted.json"])


def lift_interim_csv_with_bytes_that_are_not_utf8() -> str:
    doc = json.loads(_coco_json().read_text())
    kp = np.asarray(doc["annotations"][0]["keypoints"], dtype=float).reshape(1, 17, 3)
    csv = Path("data/interim/keypoints2d/vp1/run1b_2018-05-29-14-02-47.ids_1.keypoints2d.csv")
    write_keypoints(csv, Keypoints2D(frame_id=np.array([0]), detected=np.array([True]),
                                     xy=kp[..., :2], scores=kp[..., 2]))
    with open(csv, "ab") as f:
        f.write(b"\x00\x00\xff\xfe")
    return _error(["lift", "--checkpoint", str(_untrained_checkpoint()),
                   "--input", str(csv), "--out", "lifted.npz"])


def lift_out_below_a_file() -> str:
    Path("notes.txt").write_text("my notes\n")
    return _error(["lift", "--checkpoint", str(_untrained_checkpoint()),
                   "--input", str(_coco_json()), "--out", "notes.txt/lifted.npz"])


def lift_on_cuda_without_a_gpu() -> str:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda works")
    return _error(["lift", "--checkpoint", str(_untrained_checkpoint()),
                   "--input", str(_coco_json()), "--out", "lifted.npz", "--device", "cuda"])


def lift_checkpoint_is_a_folder() -> str:
    folder = Path("models/finetuned/pretrained/simplebl/subj4")
    folder.mkdir(parents=True)
    return _error(["lift", "--checkpoint", str(folder), "--input", str(_coco_json()),
                   "--out", "lifted.npz"])


def store_clean_with_a_negative_bound() -> str:
    _write(_params())
    return _error(["store", "clean", "--max-gb", "-1"])


# -- interrupted runs ----------------------------------------------------------------------------

_KEY = re.compile(r"\b[0-9a-f]{12}\b")
_KEY_LONG = re.compile(r"\b[0-9a-f]{64}\b")
_SECONDS = re.compile(r"\d+\.\d s\b")


def _entries_in_run_order(store: Path) -> list[Path]:
    """The run store's entries by repetition (what each entry describes; file times of
    entries written in quick succession can tie)."""
    def repetition(entry: Path) -> int:
        return int(torch.load(entry, weights_only=False)["describe"]["repetition"])

    return sorted(store.glob("*.pt"), key=repetition)


def finetune_killed_after_some_runs() -> str:
    """The second start of an interrupted stage: what the first had finished is reused (the
    kill itself is tested with SIGKILL in tests/test_finetune_resume.py). One worker: the log's order is
    the runs' order."""
    p = _params(**{"train.workers": 1})
    _write(p)
    _processed(p)
    assert _run(_finetune())[0] == 0
    store = _entries_in_run_order(Path(".cache/runs"))
    for entry in store[3:]:  # as if killed after three runs
        entry.unlink()
    status, err = _run(_finetune())
    assert status == 0
    lines = [line for line in err.splitlines() if ": reused " in line or ": trained in " in line]
    assert len(lines) == 8
    shown = [lines[0], "...", lines[3], "..."]
    return "\n".join(_SECONDS.sub("<t> s", _KEY.sub("<key>", line)) for line in shown)


def disk_full_while_storing_a_run() -> str:
    """A really full disk: ``store.dir`` is a small tmpfs (mounting it needs root). The stage
    stores its 8 runs; the entries of runs 4-8 are removed and the tmpfs is filled until half
    an entry fits; the stage runs again, reuses runs 1-3, trains run 4 and cannot store it.
    SimpleBaseline is widened so that its tensors outgrow the file buffer, as at full size:
    torch's zip writer then fails on the write that finds the disk full, after earlier ones
    went through."""
    p = _params(**{"train.workers": 1, "lifters.simplebl.linear_size": 128})
    _write(p)
    _processed(p)
    with small_tmpfs(Path(".cache/runs").resolve(), 4096) as store:
        assert _run(_finetune())[0] == 0
        entries = _entries_in_run_order(store)
        assert len(entries) == 8
        size = entries[3].stat().st_size
        for entry in entries[3:]:
            entry.unlink()
        fill(store, size // 2)
        message = _error(_finetune())
        assert len(list(store.glob("*.pt"))) == 3  # the finished runs are kept
        assert not list(store.glob(".*.tmp"))  # nothing half-written is left
    return _KEY_LONG.sub("<key>", message)


CASES: dict[str, tuple[str, Callable[..., str]]] = {
    "several_param_problems": (
        "params.yaml has several mistakes (a typo'd key, a negative learning rate, an unknown "
        "model, a fraction above 1)", several_param_problems),
    "unknown_section": (
        "params.yaml has a key that no stage reads (`evaluat:` for `evaluate:`), under `dvc "
        "repro` (its first stage, `check`, reads the whole file every time)",
        unknown_top_level_key),
    "unknown_model": (
        "`models` names a lifter that does not exist (`semgcm`), under `dvc repro`",
        models_names_an_unknown_lifter),
    "bad_value_protects_outputs": (
        "`train.lr: -0.001` after the grid has run, under `dvc repro`: `check` fails before DVC "
        "deletes any stage's outputs, so every checkpoint and metric stays",
        bad_value_under_dvc_repro),
    "batch_one": (
        "`train.batch_size: 1` (batch norm needs two samples), under `dvc repro`", batch_of_one),
    "split_member": (
        "a split names a virtual human that is not in the data (`human_9` for `human_09`), "
        "under `dvc repro`", split_names_a_human_the_data_lacks),
    "cuda_missing": (
        "`train.device: cuda` on a machine without CUDA, in the file `--params mine.yaml` names, "
        "under `dvc repro` (every device a stage would use is checked before any runs)",
        cuda_on_a_machine_without_one),
    "frame_missing": (
        "`evaluate.qualitative` names a frame the pipeline does not sample (frame 31 at "
        "`frame_stride: 30`), under `dvc repro`", example_frame_not_sampled),
    "root_missing": (
        "`data.real.root` names a folder that does not exist, under `dvc repro`",
        real_root_missing),
    "full_copy": (
        "`data.real.root` is a full Drive&Act copy (other cameras' folders beside the three the "
        "pipeline reads), under `dvc repro`", real_root_is_a_full_copy),
    "demo_views": (
        "`demo.synthetic.views` lacks a view that `data.synthetic.views` pre-trains on, under "
        "`dvc repro`", demo_without_a_pretraining_view),
    "graformer_heads": (
        "a GraFormer width that its number of heads does not divide",
        graformer_heads_do_not_divide_width),
    "setting_subjects": (
        "a setting needs more training subjects than the split has",
        setting_needs_more_subjects_than_the_split_has),
    "setting_repetitions": (
        "a single-subject setting has more repetitions (8) than there are training subjects (5)",
        single_subject_setting_repeats_more_often_than_there_are_subjects),
    "missing_openpose": (
        "the Drive&Act root has no `openpose_3d/` folder", missing_openpose_folder),
    "csv_cut": ("a 3D pose CSV ends in the middle of a row", pose_csv_cut_mid_row),
    "csv_column": ("a 3D pose CSV lacks a joint's column", pose_csv_without_a_joint_column),
    "csv_bytes": (
        "a 3D pose CSV ends in bytes that are not UTF-8 (`printf '\\x00\\x00\\xff\\xfe' >> "
        "<csv>`)", pose_csv_with_bytes_that_are_not_utf8),
    "few_frames": (
        "a training subject has fewer sampled frames than a run needs (`data.real.frame_stride: "
        "100000`: one frame per recording)", subject_with_fewer_frames_than_a_run_needs),
    "synthetic_16": (
        "a SyntheticCabin JSON has 16 instead of 17 keypoints", synthetic_json_with_16_keypoints),
    "nan_processed": ("a processed array holds a NaN", nan_in_processed_2d),
    "npz_cut": (
        "a processed file was cut short (its writer killed outside DVC)",
        processed_file_cut_by_a_killed_writer),
    "subset_indices": (
        "a subset file indexes frames the training split does not have",
        subset_from_another_training_split),
    "graformer_width": (
        "the pre-trained GraFormer has another `dim_model` than params.yaml",
        pretrained_graformer_of_another_width),
    "nan_weights": ("pre-trained weights contain NaN", pretrained_weights_with_nan),
    "ckpt_cut": ("`cabinlift lift` gets a truncated checkpoint", checkpoint_cut_by_a_killed_writer),
    "ckpt_folder": ("`cabinlift lift --checkpoint` names a folder", lift_checkpoint_is_a_folder),
    "lift_cuda": ("`cabinlift lift --device cuda` on a machine without a GPU",
                  lift_on_cuda_without_a_gpu),
    "coco_category": ("`cabinlift lift` gets a COCO annotation with `\"category_id\": \"person\"`",
                      lift_coco_category_id_is_a_name),
    "lift_unlabelled": (
        "`cabinlift lift` gets a COCO annotation with unlabelled keypoints (`x = 0, y = 0, "
        "v = 0`: both ears of one person) and one with only four keypoints labelled: it lifts "
        "the first without its ears, names them in the output's `missing`, skips the second "
        "and prints",
        lift_coco_with_unlabelled_keypoints),
    "lift_csv_bytes": (
        "`cabinlift lift` gets an interim keypoints CSV that ends in bytes that are not UTF-8 "
        "(`printf '\\x00\\x00\\xff\\xfe' >> <csv>`)",
        lift_interim_csv_with_bytes_that_are_not_utf8),
    "lift_out_file": (
        "`cabinlift lift --out notes.txt/lifted.npz` where `notes.txt` is a file",
        lift_out_below_a_file),
    "store_negative": ("`cabinlift store clean --max-gb -1`", store_clean_with_a_negative_bound),
    "disk_full": (
        "the disk fills up while fine-tuning stores its fourth finished run (a real full "
        "filesystem: `store.dir` on a small tmpfs)", disk_full_while_storing_a_run),
    "killed": (
        "a fine-tuning stage was killed after 3 of a setting's 8 runs and is started again",
        finetune_killed_after_some_runs),
}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    build(root, videos=False)
    return root


def produce(name: str, raw_root: Path, workdir: Path) -> str:
    """Run case ``name`` in ``workdir`` (the project folder it sees) and return its message."""
    func = CASES[name][1]
    old = Path.cwd()
    os.chdir(workdir)
    try:
        return func(raw_root) if func.__code__.co_argcount else func()
    finally:
        os.chdir(old)


def _cell(message: str) -> str:
    return "<br>".join(f"`{line}`" for line in message.splitlines())


def table(messages: dict[str, str]) -> str:
    rows = ["| When… | What you see |", "|---|---|"]
    rows += [f"| {CASES[name][0]} | {_cell(messages[name])} |" for name in CASES]
    return "\n".join(rows)


def readme_rows() -> dict[str, str]:
    text = README.read_text()
    assert HEADING in text, f"docs/operations.md has no section {HEADING!r}"
    section = text.split(HEADING, 1)[1]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith(("| When", "|---")):
            when, what = line[2:-2].split(" | ", 1)
            rows[when] = what
        elif rows and not line.startswith("|"):
            break
    return rows


def test_the_table_has_one_row_per_case():
    assert list(readme_rows()) == [when for when, _ in CASES.values()]
    assert len(CASES) >= 12


@pytest.mark.parametrize("name", list(CASES))
def test_readme_row_is_what_the_command_prints(name, raw, tmp_path):
    message = produce(name, raw, tmp_path)
    assert ": error: " in message or ": reused " in message or '"lifted": ' in message
    assert readme_rows().get(CASES[name][0]) == _cell(message), (
        f"docs/operations.md row for {name!r} should read:\n| {CASES[name][0]} | {_cell(message)} |")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        raw_root = Path(tmp) / "raw"
        raw_root.mkdir()
        build(raw_root, videos=False)
        found = {}
        for case in CASES:
            work = Path(tmp) / case
            work.mkdir()
            found[case] = produce(case, raw_root, work)
        print(table(found))
