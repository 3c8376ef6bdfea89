"""Registry of the 2D-to-3D lifters: a model is chosen by name from params.yaml.

Entries are imported lazily so that a stage imports only the module of the model it trains,
and so that the registry itself (read by the params check of every stage) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cabinlift.errors import CabinliftError

if TYPE_CHECKING:
    from cabinlift.lifters.base import Lifter


def __getattr__(name: str) -> Any:
    if name == "Lifter":  # ``from cabinlift.lifters import Lifter`` (loads torch)
        from cabinlift.lifters.base import Lifter

        return Lifter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: name in params.yaml -> "module:class"
REGISTRY: dict[str, str] = {
    "simplebl": "cabinlift.lifters.simplebl:SimpleBaseline",
    "semgcn": "cabinlift.lifters.semgcn:SemGCN",
    "graformer": "cabinlift.lifters.graformer:GraFormer",
    "graphmlp": "cabinlift.lifters.graphmlp:GraphMLP",
    "jointformer": "cabinlift.lifters.jointformer:JointFormer",
}

#: Display names used in reports (the paper's spelling).
DISPLAY_NAMES: dict[str, str] = {
    "simplebl": "SimpleBL",
    "semgcn": "SemGCN",
    "graphmlp": "GraphMLP",
    "graformer": "GraFormer",
    "jointformer": "JointFormer",
}


def available() -> list[str]:
    """Names of the registered lifters."""
    return list(REGISTRY)


def lifter_class(name: str) -> type[Lifter]:
    if name not in REGISTRY:
        raise CabinliftError(
            f"unknown model {name!r}: expected one of {', '.join(sorted(REGISTRY))}"
        )
    module_name, cls_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def build_lifter(name: str, num_joints: int = 13, **hparams: Any) -> Lifter:
    """Instantiate lifter ``name`` with the hyper-parameters from params.yaml."""
    cls = lifter_class(name)
    try:
        return cls(num_joints=num_joints, **hparams)
    except TypeError as exc:
        raise CabinliftError(f"bad hyper-parameters for model {name!r} (lifters.{name}): {exc}") from exc
