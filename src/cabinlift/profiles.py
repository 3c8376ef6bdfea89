"""Named sets of parameter values: the demo, the paper, and the paper authors' own code.

A profile is a file ``profiles/<name>.yaml`` holding a description and dotted ``key: value``
pairs. Every profile sets the same keys, so applying one after another leaves no value of the
first behind, and ``demo`` holds the values params.yaml ships with. params.yaml stays the only
file the pipeline reads: a profile reaches it either as a DVC experiment (``dvc exp run -S
key=value ...``, the arguments printed by :func:`set_param_args`) or written into the workspace
params.yaml with DVC's own ``--set-param`` writer (:func:`apply_profile`), which keeps the file's
layout and comments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cabinlift.errors import CabinliftError

PROFILES_DIR = Path("profiles")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    values: dict[str, Any]  # dotted key -> value, in file order


def available(root: Path = PROFILES_DIR) -> list[str]:
    """Names of the profiles in ``root``."""
    return sorted(p.stem for p in root.glob("*.yaml"))


def load_profile(name: str, root: Path = PROFILES_DIR) -> Profile:
    """Read and check ``root/<name>.yaml``: a description and a mapping of dotted keys."""
    path = root / f"{name}.yaml"
    if not path.is_file():
        names = ", ".join(available(root)) or "none"
        raise CabinliftError(f"{path}: no profile {name!r} (available: {names})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CabinliftError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"description", "params"}:
        raise CabinliftError(f"{path}: expected exactly the keys 'description' and 'params'")
    values = data["params"]
    if not isinstance(values, dict) or not values:
        raise CabinliftError(f"{path}: key 'params' must map dotted params.yaml keys to values")
    for key, value in values.items():
        if not isinstance(key, str) or not key or isinstance(value, dict | list):
            raise CabinliftError(
                f"{path}: entry {key!r} must be a dotted params.yaml key with a single value "
                f"(got {value!r})"
            )
    return Profile(name, str(data["description"]), dict(values))


def _get(params: dict[str, Any], key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise CabinliftError(f"profile key {key!r} is not in params.yaml")
        node = node[part]
    return node


def with_profile(params: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """A copy of ``params`` with the profile's values set (every key must exist already)."""
    out = yaml.safe_load(yaml.safe_dump(params))
    for key, value in profile.values.items():
        _get(out, key)
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[last] = value
    return out


#: The current value :func:`changes` gives a profile key that params.yaml lacks (absent_ok).
ABSENT = "(not in params.yaml)"


def changes(params: dict[str, Any], profile: Profile, absent_ok: bool = False
            ) -> list[tuple[str, Any, Any]]:
    """``(key, current value, profile value)`` for every key the profile changes; a key that
    ``params`` lacks is an error, or with ``absent_ok`` a change from :data:`ABSENT` (a params
    file with other settings than the profiles', e.g., compared with them)."""
    out = []
    for key, value in profile.values.items():
        try:
            current = _get(params, key)
        except CabinliftError:
            if not absent_ok:
                raise
            current = ABSENT
        if current != value:
            out.append((key, current, value))
    return out


def yaml_text(value: Any) -> str:
    """``value`` as YAML writes it on one line (``false``, ``null``, ``coco15``, ``'yes'``,
    ``[OMS_01, Dashboard]``): what ``profile show`` prints is what params.yaml and the profile
    files hold, not Python's spelling of it."""
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), allow_unicode=True)
    text = text.removesuffix("\n...\n").removesuffix("\n")
    # a string with a line break spans lines as YAML writes it; JSON's is YAML on one line
    return json.dumps(value, ensure_ascii=False) if "\n" in text else text


def set_value_text(value: Any) -> str:
    """A value as ``-S`` / Hydra's override grammar reads it back with the same type (a list
    as ``[a,b]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(set_value_text(v) for v in value) + "]"
    return str(value)


def set_param_args(profile: Profile, params: dict[str, Any] | None = None) -> list[str]:
    """``-S key=value`` arguments of ``dvc exp run`` that turn params.yaml into the profile
    (only the keys that differ from ``params`` when it is given)."""
    keys = profile.values if params is None else [k for k, _, _ in changes(params, profile)]
    args: list[str] = []
    for key in keys:
        args += ["-S", f"{key}={set_value_text(profile.values[key])}"]
    return args


def apply_profile(params_path: Path, profile: Profile) -> list[tuple[str, Any, Any]]:
    """Write the profile's values into ``params_path`` with DVC's ``--set-param`` writer, which
    keeps the file's layout; return the changes made."""
    from dvc.utils.hydra import apply_overrides

    from cabinlift.config import read_yaml

    params = read_yaml(params_path)
    made = changes(params, profile)
    if made:
        args = set_param_args(profile, params)
        apply_overrides(str(params_path), args[1::2])
    return made
