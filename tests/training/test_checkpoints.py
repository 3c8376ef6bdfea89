"""Checkpoints of :mod:`cabinlift.training`: what ``load_checkpoint`` (pre-trained weights for
fine-tuning) and ``lift``'s loader refuse, and how they name it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from cabinlift.errors import CabinliftError
from cabinlift.lift import load_lifter
from cabinlift.lifters import build_lifter
from cabinlift.training.checkpoints import load_checkpoint, save_checkpoint

GRAFORMER = {"dim_model": 96, "n_layers": 1, "n_head": 4, "dropout": 0.0, "attn_dropout": 0.0,
             "gcn_dropout": 0.0, "cheb_order": 2}
FIX = "re-run the pretrain stage (dvc repro pretrain)"


def _save(path: Path, hparams: dict, state: dict | None = None, model: str = "graformer") -> Path:
    if state is None:
        torch.manual_seed(0)
        state = build_lifter(model, **hparams).state_dict()
    save_checkpoint(path, model, hparams, state, {"target_unit_mm": 50.0})
    return path


def _refused(path: Path, model: str, hparams: dict) -> str:
    with pytest.raises(CabinliftError) as info:
        load_checkpoint(path, model, hparams)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_a_matching_checkpoint_loads_and_leaves_the_global_generator_alone(tmp_path):
    path = _save(tmp_path / "graformer.pt", GRAFORMER)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    state = load_checkpoint(path, "graformer", dict(GRAFORMER))
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(0)
    for k, v in build_lifter("graformer", **GRAFORMER).state_dict().items():
        assert torch.equal(state[k], v)


def test_hyper_parameters_that_differ_are_named_with_both_values(tmp_path):
    path = _save(tmp_path / "graformer.pt", GRAFORMER)
    wanted = {**GRAFORMER, "dim_model": 128, "n_head": 8}
    assert _refused(path, "graformer", wanted) == (
        f"{path}: checkpoint was trained as graformer with dim_model=96, n_head=4 but params.yaml "
        f"lifters.graformer has dim_model=128, n_head=8; {FIX}"
    )
    fewer = {k: v for k, v in GRAFORMER.items() if k != "cheb_order"}
    assert _refused(path, "graformer", fewer).endswith(
        f"with cheb_order=2 but params.yaml lifters.graformer has cheb_order unset; {FIX}"
    )


def test_another_model_is_named(tmp_path):
    small = {"linear_size": 16, "num_stage": 1, "dropout": 0.0}
    path = _save(tmp_path / "graformer.pt", small, model="simplebl")
    assert _refused(path, "graformer", GRAFORMER) == (
        f"{path}: checkpoint was trained as simplebl but is loaded as graformer; pass the "
        f"graformer checkpoint or {FIX}"
    )


def test_a_wrong_shaped_tensor_behind_matching_hparams(tmp_path):
    torch.manual_seed(0)
    state = build_lifter("graformer", **GRAFORMER).state_dict()
    name = next(k for k, v in state.items() if v.ndim == 2)
    rows, cols = state[name].shape
    state[name] = torch.zeros(rows + 1, cols)
    path = _save(tmp_path / "graformer.pt", GRAFORMER, state)
    assert _refused(path, "graformer", GRAFORMER) == (
        f"{path}: weights do not fit graformer with dim_model=96, n_layers=1, n_head=4, dropout=0.0, "
        f"attn_dropout=0.0, gcn_dropout=0.0, cheb_order=2: 1 tensors of the wrong shape ({name!r} is "
        f"({rows + 1}, {cols}) in the checkpoint but ({rows}, {cols}) in the model); {FIX}"
    )


def test_missing_and_unexpected_keys(tmp_path):
    torch.manual_seed(0)
    state = build_lifter("graformer", **GRAFORMER).state_dict()
    names = list(state)
    del state[names[0]]
    state["head.extra"] = torch.zeros(2)
    message = _refused(_save(tmp_path / "graformer.pt", GRAFORMER, state), "graformer", GRAFORMER)
    assert f": 1 missing keys ({names[0]!r}); 1 unexpected keys ('head.extra'); {FIX}" in message
    del state["head.extra"]
    for k in names[1:6]:
        del state[k]
    message = _refused(_save(tmp_path / "graformer.pt", GRAFORMER, state), "graformer", GRAFORMER)
    assert f"6 missing keys ({names[0]!r}, {names[1]!r}, {names[2]!r} and 3 more); {FIX}" in message


def test_non_finite_weights_name_the_tensor(tmp_path):
    torch.manual_seed(0)
    state = build_lifter("graformer", **GRAFORMER).state_dict()
    first, second = [k for k, v in state.items() if v.is_floating_point()][2:4]
    state[first] = state[first].clone()
    state[first].view(-1)[:2] = float("nan")
    state[second] = torch.full_like(state[second], float("inf"))
    path = _save(tmp_path / "graformer.pt", GRAFORMER, state)
    assert _refused(path, "graformer", GRAFORMER) == (
        f"{path}: weight tensor {first!r} has 2 non-finite values (NaN/inf) of {state[first].numel()} "
        f"(and 1 more tensors); the run that wrote it diverged or the file is corrupt; {FIX}"
    )


def test_a_truncated_checkpoint_is_one_line(tmp_path):
    path = _save(tmp_path / "graformer.pt", GRAFORMER)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = _refused(path, "graformer", GRAFORMER)
    assert re.fullmatch(
        rf"{re.escape(str(path))}: not a readable checkpoint \(.+\); the file is truncated or "
        r"corrupt: re-run the stage that wrote it \(pretrain or finetune\)", message)
    path.write_bytes(b"not a checkpoint" * 10)  # torch's own message spans several lines
    assert "\n" not in _refused(path, "graformer", GRAFORMER)


def test_a_missing_checkpoint(tmp_path):
    path = tmp_path / "graformer.pt"
    assert _refused(path, "graformer", GRAFORMER) == (
        f"{path}: checkpoint not found; run the pretrain stage (dvc repro pretrain)"
    )


def test_lift_applies_the_same_checks(tmp_path):
    torch.manual_seed(0)
    state = build_lifter("graformer", **GRAFORMER).state_dict()
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    path = _save(tmp_path / "run00.pt", GRAFORMER, state)
    with pytest.raises(CabinliftError, match=rf"run00\.pt: weight tensor {re.escape(repr(name))} has"):
        load_lifter(path)
    state = build_lifter("graformer", **GRAFORMER).state_dict()
    del state[name]
    path = _save(tmp_path / "run01.pt", GRAFORMER, state)
    with pytest.raises(CabinliftError, match=r"run01\.pt: weights do not fit graformer .*1 missing keys"):
        load_lifter(path)
    assert load_lifter(_save(tmp_path / "run02.pt", GRAFORMER)).name == "graformer"


def test_checkpoint_bytes_depend_only_on_contents(tmp_path):
    """Identical checkpoints are identical files, whatever their (temporary) names: DVC's
    hashes of fine-tuning outputs must not change when a stage is re-run or resumed."""
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    save_checkpoint(tmp_path / "a.pt", "simplebl", {"x": 1}, state, {"m": 1})
    save_checkpoint(tmp_path / "sub" / "run07.pt", "simplebl", {"x": 1}, state, {"m": 1})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "run07.pt").read_bytes()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.pt", "run07.pt"]
