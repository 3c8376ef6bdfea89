"""The paper's uniform training recipe (Section 2), identical for pre-training and fine-tuning.

Adam at ``lr``, decayed by ``lr_decay`` after every epoch; batches of ``batch_size`` drawn from a
seeded permutation of tensors held in memory (no per-sample Dataset/DataLoader); gradient norm
clipped to ``grad_clip``; the model's masked training loss; validation MPJPE every ``val_every``
epochs (and after the last epoch); the best-validation weights are kept; training stops after
``patience`` validations without improvement or after ``max_epochs``.

One recipe detail the paper leaves open: an epoch whose last batch would hold a single sample
drops that sample (batch norm cannot normalise one sample); it is drawn again next epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cabinlift.config import get
from cabinlift.errors import CabinliftError
from cabinlift.lifters import Lifter
from cabinlift.metrics import mpjpe
from cabinlift.optim import FusedAdam

MM_PER_M = 1000.0


@dataclass(frozen=True)
class Recipe:
    lr: float
    lr_decay: float
    batch_size: int
    grad_clip: float
    max_epochs: int
    val_every: int
    patience: int
    target_unit_mm: float  # the loss sees targets in units of this many millimetres
    eval_batch_size: int = 4096

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Recipe:
        num = (int, float)
        recipe = cls(
            lr=float(get(params, "train.lr", num)),
            lr_decay=float(get(params, "train.lr_decay", num)),
            batch_size=get(params, "train.batch_size", int),
            grad_clip=float(get(params, "train.grad_clip", num)),
            max_epochs=get(params, "train.max_epochs", int),
            val_every=get(params, "train.val_every", int),
            patience=get(params, "train.patience", int),
            target_unit_mm=float(get(params, "train.target_unit_mm", num)),
            eval_batch_size=get(params, "train.eval_batch_size", int),
        )
        for key in ("batch_size", "max_epochs", "val_every", "patience", "eval_batch_size"):
            if getattr(recipe, key) < 1:
                raise CabinliftError(f"params.yaml: key 'train.{key}' must be >= 1")
        for key in ("lr", "lr_decay", "grad_clip", "target_unit_mm"):
            if not getattr(recipe, key) > 0:
                raise CabinliftError(f"params.yaml: key 'train.{key}' must be > 0")
        return recipe


@dataclass
class PoseTensors:
    """Inputs, targets (in training units) and masks of one data split, on the device."""

    x: torch.Tensor  # (N, J, 2)
    y: torch.Tensor  # (N, J, 3)
    mask: torch.Tensor  # (N, J) bool

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], recipe: Recipe, device: torch.device,
                    indices: np.ndarray | None = None) -> PoseTensors:
        sel = slice(None) if indices is None else np.asarray(indices, dtype=np.int64)
        return cls(
            x=torch.as_tensor(arrays["x2d"][sel], dtype=torch.float32, device=device),
            y=torch.as_tensor(arrays["y3d"][sel] / recipe.target_unit_mm, dtype=torch.float32,
                              device=device),
            mask=torch.as_tensor(arrays["mask"][sel], dtype=torch.bool, device=device),
        )

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_val_mpjpe: float  # mm
    best_epoch: int
    epochs_run: int
    wall_time_s: float
    history: list[dict[str, float]] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CabinliftError(f"params.yaml: key 'train.device': unknown device {name!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CabinliftError("params.yaml: key 'train.device' asks for CUDA, which is not available")
    return device


@torch.no_grad()
def predict(model: Lifter, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Eval-mode predictions in training units, (N, J, 3)."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def validation_mpjpe(model: Lifter, data: PoseTensors, recipe: Recipe) -> float:
    """MPJPE in millimetres over the valid joints of ``data``."""
    pred = predict(model, data.x, recipe.eval_batch_size)
    return float(mpjpe(pred, data.y, data.mask)) * recipe.target_unit_mm


def train(model: Lifter, train_data: PoseTensors, val_data: PoseTensors, recipe: Recipe,
          seed: int, desc: str = "train") -> TrainResult:
    """Train ``model`` in place with the recipe; returns the best-validation weights and history."""
    if len(train_data) < 2:
        raise CabinliftError(f"{desc}: at least 2 training samples are needed, got {len(train_data)}")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = FusedAdam(params, lr=recipe.lr)
    device = train_data.x.device
    best_val, best_epoch, bad = float("inf"), 0, 0
    best_state = _copy_state(model)
    history: list[dict[str, float]] = []
    n = len(train_data)
    epoch = 0
    bar = tqdm(range(1, recipe.max_epochs + 1), desc=desc, unit="ep", leave=False, mininterval=2)
    for epoch in bar:
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        batches = list(perm.split(recipe.batch_size))
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches.pop()
        loss_sum = torch.zeros((), device=device)
        lr = opt.lr
        for idx in batches:
            opt.zero_grad()
            loss = model.training_loss(train_data.x[idx], train_data.y[idx], train_data.mask[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip, foreach=True)
            opt.step()
            loss_sum += loss.detach() * len(idx)
        opt.lr *= recipe.lr_decay  # as ExponentialLR does it
        if epoch % recipe.val_every == 0 or epoch == recipe.max_epochs:
            val = validation_mpjpe(model, val_data, recipe)
            train_loss = float(loss_sum) / n
            if not np.isfinite(val):
                raise CabinliftError(f"{desc}: validation MPJPE is not finite at epoch {epoch}")
            history.append(
                {"epoch": epoch, "lr": lr, "train_loss": train_loss, "val_mpjpe": val}
            )
            bar.set_postfix(val_mpjpe=f"{val:.1f}")
            if val < best_val:
                best_val, best_epoch, bad = val, epoch, 0
                best_state = _copy_state(model)
            else:
                bad += 1
                if bad >= recipe.patience:
                    break
    bar.close()
    model.load_state_dict(best_state)
    return TrainResult(best_state, best_val, best_epoch, epoch, time.perf_counter() - start, history)


def _copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def save_checkpoint(path: Path, model_name: str, hparams: dict[str, Any],
                    state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Weights plus what is needed to check they fit the model they are loaded into."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    cpu_state = {k: v.detach().cpu() for k, v in state.items()}
    torch.save({"model": model_name, "hparams": hparams, "state_dict": cpu_state, "meta": meta}, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, model_name: str, hparams: dict[str, Any]) -> dict[str, torch.Tensor]:
    """State dict of a checkpoint written by :func:`save_checkpoint` for the same model."""
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: checkpoint not found (run the pretrain stage)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise CabinliftError(f"{path}: not a readable checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CabinliftError(f"{path}: missing key 'state_dict'")
    if ckpt.get("model") != model_name or ckpt.get("hparams") != hparams:
        raise CabinliftError(
            f"{path}: checkpoint is for model {ckpt.get('model')!r} with {ckpt.get('hparams')}, "
            f"expected {model_name!r} with {hparams}; re-run the pretrain stage"
        )
    return ckpt["state_dict"]
