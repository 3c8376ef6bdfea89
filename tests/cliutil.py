"""Helpers for tests that run ``cabinlift <stage>`` in-process: params files with dotted-key
overrides, and the one-line error check every bad-input test makes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from cabinlift import cli, config


def typed(params: dict[str, Any], **changes: Any) -> config.Params:
    """The typed, checked :class:`cabinlift.config.Params` of ``params`` with ``changes``
    (dotted keys), as a stage receives it."""
    return config.build(with_changes(params, **changes))


def replaced(section: config.Section, **changes: Any) -> Any:
    """``section`` with ``changes`` (dotted keys) in place, *not* re-validated: for unit tests
    of one function on values the whole-file check refuses in combination (e.g. a single
    training subject with the protocol's eight repetitions)."""
    nested: dict[str, dict[str, Any]] = {}
    update: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            update[head] = value
    update.update({k: replaced(getattr(section, k), **v) for k, v in nested.items()})
    return section.model_copy(update=update)


def demo_section(**changes: Any) -> config.Demo:
    """params.yaml's ``demo`` section with ``changes`` (dotted keys below ``demo``, e.g.
    ``**{"real.subjects": 3}``)."""
    params = config.read_yaml(Path(__file__).resolve().parents[1] / "params.yaml")
    return typed(params, **{f"demo.{k}": v for k, v in changes.items()}).demo


def with_changes(params: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``params`` (without ``_source``) with ``changes`` (dotted keys, e.g.
    ``**{"data.real.root": ...}``) applied in place of their values."""
    params = copy.deepcopy({k: v for k, v in params.items() if k != "_source"})
    for key, value in changes.items():
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return params


def write_params(path: Path, params: dict[str, Any], **changes: Any) -> Path:
    """Write ``params`` with ``changes`` applied (see :func:`with_changes`); return the path."""
    path.write_text(yaml.safe_dump(with_changes(params, **changes)))
    return path


def one_line_error(capsys, argv: list[str]) -> str:
    """Run the CLI, expect exit status 1 and exactly one error line (progress bars aside)
    of the form ``cabinlift <stage>: error: ...``; return that line."""
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if "error:" in line]
    assert len(lines) == 1, err
    stage = argv[argv.index("--params") + 2] if "--params" in argv else argv[0]
    assert lines[0].startswith(f"cabinlift {stage}: error: "), lines[0]
    return lines[0]
