"""The paper's uniform training recipe (Section 2), identical for pre-training and fine-tuning.

Adam at ``lr``, decayed by ``lr_decay`` after every epoch; batches of ``batch_size`` drawn from a
seeded permutation of tensors held in memory (no per-sample Dataset/DataLoader); gradient norm
clipped to ``grad_clip``; the model's masked training loss; validation MPJPE every ``val_every``
epochs (and after the last epoch); the best-validation weights are kept; training stops after
``patience`` validations without improvement or after ``max_epochs``.

Recipe details the paper leaves open, each a ``train`` parameter: how the loss reduces a batch
(``loss_reduction``, :data:`cabinlift.metrics.LOSS_REDUCTIONS`) and in which unit it sees the
targets (``target_unit_mm``); whether an epoch drops its partial last batch (``drop_last``, as a
PyTorch ``DataLoader`` does; without it, only a last batch of a single sample is dropped, since
batch norm cannot normalise one sample, and it is drawn again next epoch); and whether the
starting weights are validated before the first epoch (``validate_start``), so that they are a
candidate for the best checkpoint and fine-tuning can never end worse on validation than it
started.

All runs of a stage are trained together by :func:`train_runs` (a single run is a group of
one): same results per run, far fewer and larger kernels (see :mod:`cabinlift.stacked`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cabinlift.atomic import save_torch
from cabinlift.config import get
from cabinlift.errors import CabinliftError, first_sentence
from cabinlift.lifters import Lifter, build_lifter
from cabinlift.metrics import LOSS_REDUCTIONS
from cabinlift.optim import StackedAdam, clip_grad_norm_per_run
from cabinlift.stacked import StackedLifters

MM_PER_M = 1000.0
_INIT_LOCK = threading.Lock()


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
    loss_reduction: str = "coordinate_mean"  # metrics.LOSS_REDUCTIONS
    drop_last: bool = False  # drop every partial last batch (else only a single-sample one)
    validate_start: bool = False  # validate the starting weights (epoch 0) as a best candidate

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
            loss_reduction=get(params, "train.loss_reduction", str),
            drop_last=get(params, "train.drop_last", bool),
            validate_start=get(params, "train.validate_start", bool),
        )
        for key in ("batch_size", "max_epochs", "val_every", "patience", "eval_batch_size"):
            if getattr(recipe, key) < 1:
                raise CabinliftError(f"params.yaml: key 'train.{key}' must be >= 1")
        for key in ("lr", "lr_decay", "grad_clip", "target_unit_mm"):
            if not getattr(recipe, key) > 0:
                raise CabinliftError(f"params.yaml: key 'train.{key}' must be > 0")
        if recipe.loss_reduction not in LOSS_REDUCTIONS:
            raise CabinliftError(
                f"params.yaml: key 'train.loss_reduction' must be one of "
                f"{', '.join(LOSS_REDUCTIONS)}, got {recipe.loss_reduction!r}"
            )
        return recipe


@dataclass
class PoseTensors:
    """Inputs, targets (in training units) and masks of one data split, on the device."""

    x: torch.Tensor  # (N, J, 2)
    y: torch.Tensor  # (N, J, 3)
    mask: torch.Tensor  # (N, J) bool

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], recipe: Recipe, device: torch.device
                    ) -> PoseTensors:
        """A whole split (runs select their rows by index, see :class:`RunSpec`)."""
        return cls(
            x=torch.as_tensor(arrays["x2d"], dtype=torch.float32, device=device),
            y=torch.as_tensor(arrays["y3d"] / recipe.target_unit_mm, dtype=torch.float32,
                              device=device),
            mask=torch.as_tensor(arrays["mask"], dtype=torch.bool, device=device),
        )

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_val_mpjpe: float  # mm
    best_epoch: int  # 0: the starting weights (only with ``validate_start``)
    epochs_run: int
    wall_time_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0  # optimiser steps taken
    stopped_early: bool = False  # ended by early stopping (else by max_epochs)


def resolve_device(name: str, source: str = "params.yaml: key 'train.device'") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU. ``source`` names where ``name`` came
    from (a params key, a command-line option) for the error message."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CabinliftError(
            f"{source}: unknown device {name!r} (expected cpu, cuda, cuda:N or auto)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CabinliftError(
            f"{source} asks for CUDA ({name!r}), which is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CabinliftError(f"{source} asks for {name!r}, but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 ...)")
    return device


@torch.no_grad()
def predict(model: Lifter, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Eval-mode predictions in training units, (N, J, 3)."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


@dataclass
class RunSpec:
    """One training run: its seed (weights init, batch order, noise), its training rows
    (indices into the pool; None = all) and optional starting weights."""

    seed: int
    indices: np.ndarray | None = None
    init_state: dict[str, torch.Tensor] | None = None


def noise_seed(seed: int) -> int:
    """The seed of a run's dropout-noise generator (distinct from its batch-order seed)."""
    return (seed * 0x9E3779B1 + 0x7F4A7C15) % (2**63)


def draw_noise(gens: list[torch.Generator], runs: list[int], n_runs: int, lanes: int,
               device: torch.device) -> torch.Tensor:
    """int16 noise ``(n_runs, lanes)``: rows of ``runs`` drawn from their own generators (each
    run draws exactly once per step it takes), the other rows zero (stand-ins)."""
    words = (lanes + 3) // 4
    bits = torch.zeros(n_runs, max(words, 1), dtype=torch.int64, device=device)
    for r in runs:
        bits[r].random_(-(2**63), None, generator=gens[r])  # four uniform int16 lanes each
    return bits.view(torch.int16)[:, :lanes]


def _pool_rows(spec: RunSpec, n_pool: int, device: torch.device) -> torch.Tensor:
    if spec.indices is None:
        return torch.arange(n_pool, device=device)
    return torch.as_tensor(np.asarray(spec.indices, dtype=np.int64), device=device)


def train_runs(model_name: str, hparams: dict[str, Any], specs: list[RunSpec],
               pool: PoseTensors, val_data: PoseTensors, recipe: Recipe,
               desc: str = "train", progress: bool = True
               ) -> tuple[list[TrainResult], StackedLifters]:
    """Train the runs ``specs`` of one model together (see :mod:`cabinlift.stacked`).

    Each run is what training it alone would give (up to floating-point reassociation): its
    weights start from ``torch.manual_seed(seed)`` (then ``init_state``), every epoch it draws
    its own permutation of its own rows from ``Generator(seed)``, its dropout noise from its own
    generator (one draw per step it takes), and it is clipped, updated, validated, early-stopped
    and checkpointed on its own. An epoch is one pass over each run's own rows; a run whose
    epoch has fewer batches waits (no update) while the others finish theirs, and stopped runs
    take no more steps.
    Returns one result per run (best-validation weights) and the stacked model holding them.
    """
    if not specs:
        raise CabinliftError(f"{desc}: no runs to train")
    device = pool.x.device
    rows = [_pool_rows(s, len(pool), device) for s in specs]
    for r in rows:
        if len(r) < 2:
            raise CabinliftError(f"{desc}: at least 2 training samples are needed, got {len(r)}")
    start = time.perf_counter()
    states, net = [], None
    with _INIT_LOCK:  # weight init draws from torch's global generator: one thread at a time
        for s in specs:
            torch.manual_seed(s.seed)
            net = build_lifter(model_name, **hparams)
            if s.init_state is not None:
                net.load_state_dict(s.init_state)
            states.append(net.state_dict())  # stacked (copied) below
    stack = StackedLifters(model_name, hparams, states, device, structure=net,
                           loss_reduction=recipe.loss_reduction)
    del states
    n_runs = len(specs)
    params = list(stack.params.values())
    opt = StackedAdam(params, lr=recipe.lr)
    gens = [torch.Generator().manual_seed(s.seed) for s in specs]
    noise_gens = [torch.Generator(device=device).manual_seed(noise_seed(s.seed)) for s in specs]
    best_val = [float("inf")] * n_runs
    best_epoch, bad, epochs_run = [0] * n_runs, [0] * n_runs, [0] * n_runs
    steps = [0] * n_runs
    done = [False] * n_runs
    history: list[list[dict[str, float | None]]] = [[] for _ in specs]
    best = stack.snapshot()
    all_runs = list(range(n_runs))
    if recipe.validate_start:
        for r, val in enumerate(stacked_mpjpe(stack, val_data, recipe)):
            _check_finite(val, desc, specs[r].seed, r, 0)
            history[r].append({"epoch": 0, "lr": opt.lr, "train_loss": None, "val_mpjpe": val})
            best_val[r] = val
    bar = tqdm(range(1, recipe.max_epochs + 1), desc=desc, unit="ep", leave=False, mininterval=2,
               disable=not progress)
    for epoch in bar:
        live = [r for r in all_runs if not done[r]]
        if not live:
            break
        lr = opt.lr
        batches: dict[int, list[torch.Tensor]] = {}
        for r in live:
            perm = torch.randperm(len(rows[r]), generator=gens[r]).to(device)
            parts = list(perm.split(recipe.batch_size))
            if recipe.drop_last and len(parts[-1]) < recipe.batch_size:
                parts.pop()  # as DataLoader(drop_last=True): fewer rows than a batch, no step
            elif len(parts) > 1 and len(parts[-1]) == 1:
                parts.pop()  # batch norm cannot normalise one sample; drawn again next epoch
            batches[r] = [rows[r][p] for p in parts]
            steps[r] += len(parts)
        loss_sum = torch.zeros(n_runs, device=device)
        for t in range(max(len(b) for b in batches.values())):
            groups: dict[int, list[int]] = {}
            for r in live:
                if t < len(batches[r]):
                    groups.setdefault(len(batches[r][t]), []).append(r)
            opt.zero_grad()
            total = None
            active: list[int] = []
            for size, rs in groups.items():
                # Every run computes (one vectorised call); runs without a batch of this size
                # stand in with a member's rows and get no weight.
                stand_in = batches[rs[0]][t]
                idx = torch.stack([batches[r][t] if r in rs else stand_in for r in all_runs])
                member = torch.zeros(n_runs, dtype=torch.bool, device=device)
                member[torch.tensor(rs, device=device)] = True
                noise = draw_noise(noise_gens, rs, n_runs, stack.noise_lanes(size), device)
                losses = stack.losses(None if len(rs) == n_runs else member, noise,
                                      pool.x[idx], pool.y[idx], pool.mask[idx])
                weighted = torch.where(member, losses, torch.zeros_like(losses))
                total = weighted.sum() if total is None else total + weighted.sum()
                loss_sum += weighted.detach() * size
                active += rs
            total.backward()
            clip_grad_norm_per_run(params, recipe.grad_clip)
            opt.step(active)
        opt.lr *= recipe.lr_decay  # as ExponentialLR does it
        for r in live:
            epochs_run[r] = epoch
        if epoch % recipe.val_every == 0 or epoch == recipe.max_epochs:
            vals = stacked_mpjpe(stack, val_data, recipe)
            train_loss = loss_sum.tolist()
            for r in live:
                val = vals[r]
                _check_finite(val, desc, specs[r].seed, r, epoch)
                n_used = sum(len(b) for b in batches[r])
                history[r].append({"epoch": epoch, "lr": lr,
                                   "train_loss": train_loss[r] / n_used if n_used else None,
                                   "val_mpjpe": val})
                if val < best_val[r]:
                    best_val[r], best_epoch[r], bad[r] = val, epoch, 0
                    stack.keep(best, r)
                else:
                    bad[r] += 1
                    if bad[r] >= recipe.patience:
                        done[r] = True
            bar.set_postfix(val_mpjpe=f"{min(vals[r] for r in live):.1f}")
    bar.close()
    stack.load(best)
    wall = (time.perf_counter() - start) / n_runs
    results = [
        TrainResult(stack.state_dict_of(best, r), best_val[r], best_epoch[r], epochs_run[r],
                    wall, history[r], steps[r], done[r])
        for r in all_runs
    ]
    return results, stack


def _check_finite(val: float, desc: str, seed: int, run: int, epoch: int) -> None:
    if not np.isfinite(val):
        raise CabinliftError(
            f"{desc}: run {run} (seed {seed}): validation MPJPE is not finite at epoch {epoch}"
        )


def stacked_mpjpe(stack: StackedLifters, data: PoseTensors, recipe: Recipe) -> list[float]:
    """Per-run MPJPE in millimetres over the valid joints of ``data``."""
    pred = stack.predict(data.x, recipe.eval_batch_size)  # (R, N, J, 3)
    m = data.mask.to(pred.dtype)
    err = torch.linalg.vector_norm(pred - data.y, dim=-1) * m
    per_run = err.sum(dim=(1, 2)) / m.sum().clamp_min(1.0)
    return (per_run * recipe.target_unit_mm).tolist()


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
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
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
    fix = f"re-run the pretrain stage (dvc repro pretrain@{model_name})"
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
