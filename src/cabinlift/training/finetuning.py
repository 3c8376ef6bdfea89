"""How the runs that start from pre-trained weights are fine-tuned: params' ``finetune``
section (runs from scratch never read it), and the batches of its mixed strategy.

``finetune.strategy``:

- ``sequential`` (the paper): pre-training, then every weight fine-tuned on the real data.
- ``frozen``: only the lifter's output layer(s) (:attr:`cabinlift.lifters.base.Lifter.
  output_layers`) are trained. Every other weight stays bitwise as pre-trained, batch-norm
  statistics included: its parameters are left out of the optimiser and of the gradient clipping,
  and its modules compute as at inference (dropout off, batch norm normalising with its
  pre-trained statistics, which therefore never change), so the output layer learns on the
  features the frozen network gives at test time (:class:`cabinlift.training.engine.
  StackedLifters`).
- ``mixed``: every weight is trained, on batches of which ``finetune.mixed_share`` (rounded, see
  :func:`cabinlift.config.synthetic_rows`) are synthetic training poses and the rest real ones.
  An epoch is still one pass over the run's real rows; the synthetic rows of each batch are drawn
  uniformly with replacement from the whole synthetic training split by a generator of the run's
  own (:func:`mixing_seed`), so a run's batches do not depend on the runs stacked with it.

``finetune.lr`` (null: ``train.lr``) is the learning rate of these runs; the rest of the recipe
(decay, clipping, epochs, early stopping) is ``train``'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from cabinlift.config import synthetic_rows

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from cabinlift.config import Finetune

#: A :class:`cabinlift.training.recipe.Recipe` (which trains with strategies: not imported here).
RecipeT = TypeVar("RecipeT", bound="DataclassInstance")

#: The synthetic split mixed fine-tuning draws from (in the processed data folder).
SYNTHETIC_TRAIN = "synthetic_train.npz"


@dataclass(frozen=True)
class Strategy:
    """How a stack of runs is fine-tuned: ``kind`` (one of
    :data:`cabinlift.config.FINETUNE_STRATEGIES`), the synthetic share of a mixed batch and the
    learning rate (None: ``train.lr``). The default is the paper's (and every scratch run's)."""

    kind: str = "sequential"
    mixed_share: float | None = None  # only with kind "mixed"
    lr: float | None = None

    @classmethod
    def from_config(cls, finetune: Finetune) -> Strategy:
        """params.yaml's ``finetune`` section (validated there)."""
        kind = finetune.strategy
        return cls(kind, finetune.mixed_share if kind == "mixed" else None, finetune.lr)

    @property
    def frozen(self) -> bool:
        return self.kind == "frozen"

    @property
    def mixed(self) -> bool:
        return self.kind == "mixed"

    def recipe(self, recipe: RecipeT) -> RecipeT:
        """``recipe`` (a :class:`~cabinlift.training.recipe.Recipe`) with this strategy's
        learning rate (unchanged without one)."""
        return recipe if self.lr is None else dataclasses.replace(recipe, lr=self.lr)

    def synthetic_per_batch(self, batch_size: int) -> int:
        """The synthetic rows of a full batch (0 unless mixed)."""
        return synthetic_rows(self.mixed_share, batch_size) if self.mixed else 0

    def describe(self) -> dict[str, Any] | None:
        """What sets these runs apart from the paper's fine-tuning, for their store keys and
        checkpoints; None at the defaults (keys and outputs then stay as they always were)."""
        if self.kind == "sequential" and self.lr is None:
            return None
        out: dict[str, Any] = {"strategy": self.kind}
        if self.mixed:
            out["mixed_share"] = self.mixed_share
        if self.lr is not None:
            out["lr"] = self.lr
        return out


#: The paper's fine-tuning, and every run's from scratch.
SEQUENTIAL = Strategy()


def mixing_seed(seed: int) -> int:
    """The seed of a run's generator of synthetic rows (distinct from the seeds of its batch
    order and its dropout noise, :func:`cabinlift.training.engine.noise_seed`)."""
    return (seed * 0x9E3779B1 + 0x3C6EF372) % (2**63)


def mixed_batches(rows: torch.Tensor, order: torch.Generator, mixing: torch.Generator,
                  synthetic: torch.Tensor, batch_size: int, per_batch: int, drop_last: bool
                  ) -> list[torch.Tensor]:
    """One epoch of a run fine-tuned with mixed batches of ``batch_size``: its real ``rows`` in
    a fresh permutation drawn from ``order``, cut into parts of ``batch_size - per_batch`` (the
    partial last part dropped with ``drop_last``, as :func:`cabinlift.training.recipe.
    epoch_batches` does), each followed by synthetic rows drawn uniformly with replacement from the pool rows
    ``synthetic`` by ``mixing``: ``per_batch`` of them in a full batch, in proportion (rounded,
    at least one) in a partial last one. So no batch is a single sample."""
    n_real = batch_size - per_batch
    parts = list(torch.randperm(len(rows), generator=order).to(rows.device).split(n_real))
    if drop_last and len(parts[-1]) < n_real:
        parts.pop()
    out = []
    for part in parts:
        k = max(1, (2 * len(part) * per_batch + n_real) // (2 * n_real))
        pick = torch.randint(len(synthetic), (k,), generator=mixing).to(rows.device)
        out.append(torch.cat([rows[part], synthetic[pick]]))
    return out
