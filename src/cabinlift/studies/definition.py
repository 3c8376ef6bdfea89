"""A study file, ``studies/<name>.yaml``: a question, a base and its variants.

``base`` and each variant map dotted params.yaml keys to values, as a profile does
(:mod:`cabinlift.profiles`); a variant is run as the DVC experiment ``<study>-<variant>`` with
the ``-S`` assignments of the base followed by its own (the variant's win). Every variant is
checked against params.yaml as a whole (:func:`cabinlift.config.build`) before anything is
queued, so a misspelt key or a bad value stops the study with the message a stage would give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cabinlift import config
from cabinlift.errors import CabinliftError
from cabinlift.profiles import Profile, set_value_text, with_profile

STUDIES_DIR = Path("studies")
#: The keys of a study file.
KEYS = ("description", "base", "variants")
#: A variant's name: part of a DVC experiment name (a git ref component).
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    base: dict[str, Any]  # dotted key -> value
    variants: dict[str, dict[str, Any]]  # variant -> dotted key -> value, in file order

    def experiment(self, variant: str) -> str:
        """The DVC experiment name of ``variant``."""
        return f"{self.name}-{variant}"

    def values(self, variant: str) -> dict[str, Any]:
        """Every value ``variant`` sets: the base's, then its own."""
        return {**self.base, **self.variants[variant]}

    def set_args(self, variant: str) -> list[str]:
        """``-S key=value`` arguments of ``dvc exp run`` for ``variant``."""
        args: list[str] = []
        for key, value in self.values(variant).items():
            args += ["-S", f"{key}={set_value_text(value)}"]
        return args


def available(root: Path = STUDIES_DIR) -> list[str]:
    """Names of the studies in ``root``."""
    return sorted(p.stem for p in root.glob("*.yaml"))


def _mapping(path: Path, where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CabinliftError(f"{path}: key {where!r} must map dotted params.yaml keys to values")
    for key, item in value.items():
        if not isinstance(key, str) or not key or isinstance(item, dict):
            raise CabinliftError(f"{path}: entry {key!r} of {where!r} must be a dotted "
                                 f"params.yaml key with a value (got {item!r})")
    return dict(value)


def load_study(name: str, root: Path = STUDIES_DIR) -> Study:
    """Read ``root/<name>.yaml`` and check its form (not yet its values: :func:`check`)."""
    path = root / f"{name}.yaml"
    if not path.is_file():
        names = ", ".join(available(root)) or "none"
        raise CabinliftError(f"{path}: no study {name!r} (available: {names})")
    if not _NAME.match(name):
        raise CabinliftError(f"{path}: a study name must be lower-case letters, digits and _")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CabinliftError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) != set(KEYS):
        raise CabinliftError(f"{path}: expected exactly the keys {', '.join(KEYS)}")
    variants = data["variants"]
    if not isinstance(variants, dict) or len(variants) < 2:
        raise CabinliftError(f"{path}: key 'variants' must map at least two variant names to "
                             f"their values")
    out = {}
    for variant, values in variants.items():
        if not isinstance(variant, str) or not _NAME.match(variant):
            raise CabinliftError(f"{path}: variant name {variant!r} must be lower-case letters, "
                                 f"digits and _ (it becomes part of a DVC experiment name)")
        out[variant] = _mapping(path, f"variants.{variant}", values)
    return Study(name, str(data["description"]).strip(), _mapping(path, "base", data["base"]),
                 out)


def check(study: Study, raw_params: dict[str, Any], source: str) -> None:
    """Every variant of ``study`` applied to ``raw_params`` (params.yaml as written, read from
    ``source``) is a valid params.yaml: one error listing each variant's problems."""
    problems = []
    for variant in study.variants:
        profile = Profile(study.experiment(variant), study.description, study.values(variant))
        where = f"{source} with study {study.name!r}, variant {variant!r}"
        try:
            params = with_profile(raw_params, profile)
        except CabinliftError as exc:  # a key params.yaml does not have
            problems.append(f"{where}: {str(exc).replace('profile key', 'key')}")
            continue
        try:
            config.build(params, where)
        except CabinliftError as exc:
            problems.append(str(exc))
    if problems:
        raise CabinliftError("\n".join(problems))
