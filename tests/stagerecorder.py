"""Run one ``cabinlift`` command in this process, recording which params it read and which of
the package's modules it loaded: ``python stagerecorder.py OUT.json CABINLIFT-ARGS...``.

A param is read when the command takes a value out of the typed config: a field that is not
itself a section, an entry of a mapping of plain values (a lifter's hyper-parameters), every
entry of a mapping it iterates, or every field of a section it dumps whole. Sections only
passed along are not reads; what is taken out of them is. OUT.json receives ``{"status",
"read": [dotted keys], "modules": [cabinlift modules in sys.modules]}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cabinlift import config

READ: set[str] = set()
PATHS: dict[int, str] = {}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _leaves(value: Any, path: str) -> list[str]:
    if isinstance(value, config.Section):
        return [leaf for name in type(value).model_fields
                for leaf in _leaves(value.__dict__[name], _join(path, name))]
    # dict's own methods: a RecordingDict's would record (and call back here)
    if isinstance(value, dict) and any(isinstance(v, config.Section)
                                       for v in dict.values(value)):
        return [leaf for k, v in dict.items(value) for leaf in _leaves(v, _join(path, str(k)))]
    return [path]


class RecordingDict(dict):
    """A mapping of params that records what is taken out of it."""

    path = ""

    def _took(self, key: Any) -> None:
        value = dict.get(self, key)
        if not isinstance(value, config.Section):
            READ.add(_join(self.path, str(key)))

    def __getitem__(self, key: Any) -> Any:
        self._took(key)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            self._took(key)
        return dict.get(self, key, default)

    def _all(self) -> None:
        READ.update(_leaves(self, self.path))

    def __iter__(self):
        self._all()
        return dict.__iter__(self)

    def items(self):
        self._all()
        return dict.items(self)

    def values(self):
        self._all()
        return dict.values(self)

    def keys(self):
        self._all()
        return dict.keys(self)


def _walk(obj: Any, path: str) -> None:
    """Register every section of ``obj`` by its dotted path; mappings become recording ones."""
    if not isinstance(obj, config.Section):
        return
    PATHS[id(obj)] = path
    for name in type(obj).model_fields:
        value = obj.__dict__[name]
        child = _join(path, name)
        if isinstance(value, dict):
            recording = RecordingDict(value)
            recording.path = child
            obj.__dict__[name] = recording
            for key, item in value.items():
                _walk(item, _join(child, str(key)))
        else:
            _walk(value, child)


def _getattribute(self: Any, name: str) -> Any:
    value = object.__getattribute__(self, name)
    if not name.startswith("_") and name in type(self).model_fields:
        path = PATHS.get(id(self))
        if path is not None and not isinstance(value, config.Section | RecordingDict):
            READ.add(_join(path, name))
    return value


_dump = config.Section.model_dump


def _model_dump(self: Any, *args: Any, **kwargs: Any) -> Any:
    path = PATHS.get(id(self))
    if path is not None:
        READ.update(_leaves(self, path))
    return _dump(self, *args, **kwargs)


def _install() -> None:
    load = config.load_config

    def recording_load(path: Any = "params.yaml") -> config.Params:
        params = load(path)
        _walk(params, "")
        return params

    config.load_config = recording_load
    config.Section.__getattribute__ = _getattribute
    config.Section.model_dump = _model_dump


def main() -> None:
    out, argv = sys.argv[1], sys.argv[2:]
    _install()
    from cabinlift.cli import main as cabinlift

    status = cabinlift(argv)
    with open(out, "w") as f:
        json.dump({"status": status, "read": sorted(READ),
                   "modules": sorted(m for m in sys.modules if m.split(".")[0] == "cabinlift")},
                  f)


if __name__ == "__main__":
    main()
