"""Reading and checking params.yaml: every protocol number the code uses comes from here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cabinlift.errors import CabinliftError

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Load params.yaml; a missing or malformed file is a one-line error naming it."""
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: parameters file not found")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise CabinliftError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(params, dict):
        raise CabinliftError(f"{path}: expected a mapping at the top level")
    params["_source"] = str(path)
    return params


def get(params: dict[str, Any], key: str, expected: type | tuple[type, ...] | None = None) -> Any:
    """Value at dotted ``key``; a missing key or a value of the wrong type is a clear error."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise CabinliftError(f"{params.get('_source', 'params.yaml')}: missing key '{key}'")
        node = node[part]
    if expected is not None:
        ok = isinstance(node, expected) and not (
            isinstance(node, bool) and bool not in _as_tuple(expected)
        )
        if not ok:
            names = " or ".join(t.__name__ for t in _as_tuple(expected))
            raise CabinliftError(
                f"{params.get('_source', 'params.yaml')}: key '{key}' must be {names}, "
                f"got {node!r}"
            )
    return node


def _as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def models(params: dict[str, Any]) -> list[str]:
    """The lifters the pipeline trains, each checked against the registry."""
    from cabinlift.lifters import REGISTRY

    names = get(params, "models", list)
    for name in names:
        if name not in REGISTRY:
            raise CabinliftError(
                f"{params.get('_source', 'params.yaml')}: key 'models' names unknown model "
                f"{name!r}; expected one of {', '.join(sorted(REGISTRY))}"
            )
        get(params, f"lifters.{name}", dict)
    return names


def check_model(params: dict[str, Any], name: str) -> dict[str, Any]:
    """Hyper-parameters of one model (``lifters.<name>``), after checking the name is known."""
    from cabinlift.lifters import REGISTRY

    if name not in REGISTRY:
        raise CabinliftError(
            f"unknown model {name!r}; expected one of {', '.join(sorted(REGISTRY))}"
        )
    return dict(get(params, f"lifters.{name}", dict))


def settings(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Table-1 settings in column order: ``{name: {subjects, fraction, repetitions}}``.

    ``settings`` (a list, DVC's matrix axis) gives the order; ``subsets.settings`` the definitions.
    """
    src = params.get("_source", "params.yaml")
    order = get(params, "settings", list)
    defs = get(params, "subsets.settings", dict)
    out: dict[str, dict[str, Any]] = {}
    for name in order:
        if name not in defs:
            raise CabinliftError(
                f"{src}: setting {name!r} of key 'settings' has no definition under "
                f"'subsets.settings'"
            )
        d = defs[name]
        key = f"subsets.settings.{name}"
        if not isinstance(d, dict):
            raise CabinliftError(f"{src}: key '{key}' must be a mapping")
        for field in ("subjects", "fraction", "repetitions"):
            if field not in d:
                raise CabinliftError(f"{src}: missing key '{key}.{field}'")
        fraction, subjects, reps = d["fraction"], d["subjects"], d["repetitions"]
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not (
            0 < fraction <= 1
        ):
            raise CabinliftError(
                f"{src}: key '{key}.fraction' must be a number in (0, 1], got {fraction!r}"
            )
        if isinstance(subjects, bool) or not isinstance(subjects, int) or subjects < 1:
            raise CabinliftError(f"{src}: key '{key}.subjects' must be an integer >= 1, got {subjects!r}")
        if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
            raise CabinliftError(f"{src}: key '{key}.repetitions' must be an integer >= 1, got {reps!r}")
        if fraction < 1 and subjects != 1:
            raise CabinliftError(
                f"{src}: key '{key}': a fraction below 1 is defined for one subject only "
                f"(subjects: 1), got subjects: {subjects}"
            )
        out[name] = {"subjects": subjects, "fraction": float(fraction), "repetitions": reps}
    return out
