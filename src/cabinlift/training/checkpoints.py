"""Checkpoints: weights with the model name and hyper-parameters that built them, checked
against the architecture they are loaded into (names, shapes, finite values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cabinlift.atomic import save_torch
from cabinlift.errors import CabinliftError, first_sentence
from cabinlift.lifters import Lifter, build_lifter
from cabinlift.training.engine import BUILD_LOCK


def save_checkpoint(path: Path, model_name: str, hparams: dict[str, Any],
                    state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Weights plus what is needed to check they fit the model they are loaded into."""
    cpu_state = {k: v.detach().cpu() for k, v in state.items()}
    save_torch(path, {"model": model_name, "hparams": hparams, "state_dict": cpu_state,
                      "meta": meta})


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The contents of a checkpoint written by :func:`save_checkpoint`, checked for its keys."""
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        reason = first_sentence(exc)
        raise CabinliftError(
            f"{path}: not a readable checkpoint ({reason}); the file is truncated or corrupt: "
            "re-run the stage that wrote it (pretrain or finetune)"
        ) from None
    if not isinstance(ckpt, dict) or not {"model", "hparams", "state_dict"} <= set(ckpt):
        raise CabinliftError(
            f"{path}: expected a cabinlift checkpoint with keys 'model', 'hparams', 'state_dict' "
            "(written by the pretrain or finetune stage)"
        )
    for key, kind, what in (("model", str, "a model name"), ("hparams", dict, "a dict"),
                            ("state_dict", dict, "a dict of tensors")):
        if not isinstance(ckpt[key], kind):
            raise CabinliftError(
                f"{path}: checkpoint key {key!r} holds {type(ckpt[key]).__name__}, expected {what} "
                "(written by the pretrain or finetune stage)"
            )
    return ckpt


def _hparams_text(hparams: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={hparams[k]!r}" if k in hparams else f"{k} unset" for k in keys)


def _some(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(k) for k in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_state_dict(path: Path, model_name: str, hparams: dict[str, Any],
                     expected: dict[str, torch.Tensor], state: dict[str, Any], fix: str) -> None:
    """Check that ``state`` has exactly the tensors (names and shapes) of ``expected``, the state
    dict of ``model_name`` built with ``hparams``, and that its floating-point values are finite."""
    not_tensor = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensor:
        raise CabinliftError(f"{path}: state dict entries {_some(not_tensor)} are not tensors; {fix}")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys ({_some(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys ({_some(unexpected)})")
        if wrong:
            first = "; ".join(
                f"{k!r} is {tuple(state[k].shape)} in the checkpoint but {tuple(expected[k].shape)} "
                "in the model" for k in wrong[:3]
            )
            more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
            problems.append(f"{len(wrong)} tensors of the wrong shape ({first}{more})")
        raise CabinliftError(
            f"{path}: weights do not fit {model_name} with {_hparams_text(hparams, list(hparams))}: "
            f"{'; '.join(problems)}; {fix}"
        )
    bad = {}
    for k, v in state.items():
        if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all()):
            bad[k] = int((~torch.isfinite(v)).sum())
    if bad:
        k = next(iter(bad))
        others = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise CabinliftError(
            f"{path}: weight tensor {k!r} has {bad[k]} non-finite values (NaN/inf) of "
            f"{state[k].numel()}{others}; the run that wrote it diverged or the file is corrupt; {fix}"
        )


def build_with_weights(path: Path, model_name: str, hparams: dict[str, Any],
                       state: dict[str, Any], fix: str) -> Lifter:
    """``model_name`` built with ``hparams`` and loaded with ``state``, after
    :func:`check_state_dict`. Building draws no numbers from torch's global generator."""
    with BUILD_LOCK, torch.random.fork_rng(devices=[]):
        try:
            net = build_lifter(model_name, **hparams)
        except CabinliftError as exc:
            raise CabinliftError(f"{path}: {exc}; {fix}") from None
    check_state_dict(path, model_name, hparams, net.state_dict(), state, fix)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied into the parameter
        first = str(exc).strip().splitlines()[0]
        raise CabinliftError(f"{path}: weights do not fit {model_name}: {first}; {fix}") from None
    return net


def load_checkpoint(path: Path, model_name: str, hparams: dict[str, Any]) -> dict[str, torch.Tensor]:
    """State dict of a checkpoint written by :func:`save_checkpoint` for the same model: same
    name, same hyper-parameters, tensors that fit the architecture they describe, finite."""
    path = Path(path)
    fix = "re-run the pretrain stage (dvc repro pretrain)"
    if not path.is_file():
        raise CabinliftError(f"{path}: checkpoint not found; {fix.replace('re-run', 'run', 1)}")
    ckpt = read_checkpoint(path)
    saved_name, saved = ckpt["model"], ckpt["hparams"]
    if saved_name != model_name:
        raise CabinliftError(
            f"{path}: checkpoint was trained as {saved_name} but is loaded as {model_name}; "
            f"pass the {model_name} checkpoint or {fix}"
        )
    keys = list(hparams) + [k for k in saved if k not in hparams]
    diff = [k for k in keys if (k in saved) != (k in hparams) or saved.get(k) != hparams.get(k)]
    if diff:
        raise CabinliftError(
            f"{path}: checkpoint was trained as {model_name} with {_hparams_text(saved, diff)} "
            f"but params.yaml lifters.{model_name} has {_hparams_text(hparams, diff)}; {fix}"
        )
    build_with_weights(path, model_name, hparams, ckpt["state_dict"], fix)
    return ckpt["state_dict"]
