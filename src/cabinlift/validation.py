"""A nested mapping checked by a pydantic model, every problem in the project's one-line words.

:func:`check` validates a mapping (params.yaml as loaded) with a model whose fields use pydantic's
own constraints, and rewords each error, in one place (:func:`_reword`), into a sentence naming
the dotted key, what it must hold and what it holds: ``key 'train.lr' must be a number > 0, got
-0.001``, ``unknown key 'train.lrr' (did you mean 'train.lr'?)``, ``missing key 'demo' (expected
a mapping)``. What a key must hold is its field's ``description`` or else is read from its type
and bounds. A validator that finds a problem the types cannot say raises whole sentences with
:func:`refuse`; the model's rules across its sections are asked by :func:`ask`, also of the
sections that hold when another one does not, so that one run finds every problem.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

Rule = Callable[..., Iterable[str]]


def report(source: str, found: Sequence[str]) -> str:
    """The one message of the problems ``found`` in ``source`` (a parameters file): ``params.yaml:
    1 problem: ...``, or the count and one indented ``- ...`` line per problem."""
    if len(found) == 1:
        return f"{source}: 1 problem: {found[0]}"
    return f"{source}: {len(found)} problems:\n" + "\n".join(f"  - {p}" for p in found)


def refuse(found: Iterable[str]) -> None:
    """Raise the problems a validator found (whole sentences), if any."""
    found = list(found)
    if found:
        raise ValidationError.from_exception_data("params", [InitErrorDetails(
            type=PydanticCustomError("cabinlift", "{text}", {"text": text}), loc=(), input=None)
            for text in found])


def holds(test: Callable[[Any], bool]) -> AfterValidator:
    """Refuse a value unless ``test`` holds (the message says what the key must hold)."""
    def check(value: Any) -> Any:
        if not test(value):
            raise ValueError("refused")
        return value
    return AfterValidator(check)


def ask(rules: Sequence[Rule], sections: dict[str, Any]) -> list[str]:
    """The problems of every rule whose parameters all name one of ``sections``."""
    found: list[str] = []
    for rule in rules:
        names = list(inspect.signature(rule).parameters)
        if all(n in sections for n in names):
            found += rule(*(sections[n] for n in names))
    return found


def check(model: type[BaseModel], raw: dict[str, Any], rules: Sequence[Rule] = ()
          ) -> tuple[Any, list[str]]:
    """``raw`` as a ``model``, or None and every problem of it: the errors in the order of the
    model's fields (unknown keys first), then the problems of the ``rules`` across sections
    (which the model asks itself once every section holds)."""
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        errors = exc.errors()
    rank = {name: i for i, name in enumerate(model.model_fields)}

    def order(e: Any) -> tuple[int, bool]:
        return (rank.get(e["loc"][0], -1) if e["loc"] else len(rank)), e["type"] != "extra_forbidden"

    found = [_reword(model, e, raw) for e in sorted(errors, key=order)]
    if all(e["loc"] for e in errors):  # a section failed, so the rules were not asked
        found += ask(rules, _valid_sections(model, raw))
    return None, list(dict.fromkeys(found))  # a problem two rules find, once


@functools.cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter:
    field = model.model_fields[name]
    return TypeAdapter(Annotated[field.annotation, *field.metadata] if field.metadata
                       else field.annotation)


def _valid_sections(model: type[BaseModel], raw: dict[str, Any]) -> dict[str, Any]:
    """The top-level sections of ``raw`` that hold on their own, typed."""
    out = {}
    for name, field in model.model_fields.items():
        if name in raw or not field.is_required():
            try:
                out[name] = _adapter(model, name).validate_python(raw.get(name, field.default))
            except ValidationError:
                pass
    return out

# --------------------------------------------------------------------------- words


def suggest(name: str, known: Sequence[str]) -> str | None:
    """The known name ``name`` was most likely meant to be: a close spelling (difflib), else
    the one that abbreviates it or that it abbreviates (``learning_rate`` -> ``lr``)."""
    def initials(s: str) -> str:
        return "".join(w[0] for w in re.split(r"[_\W]+", s.lower()) if w)

    lowered = {k.lower(): k for k in known}
    guess = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if guess:
        return lowered[guess[0]]
    short = name.lower().replace("_", "")
    for k in known:
        if len(k) > 1 and initials(name) == k.lower() or len(short) > 1 and initials(k) == short:
            return k
    return None


def unknown(path: Sequence[Any], known: Sequence[str]) -> str:
    """``unknown key 'a.b' (did you mean 'a.c'?)``, or the known keys when none is close."""
    guess = suggest(str(path[-1]), known)
    dotted = ".".join(map(str, path))
    hint = (f"did you mean '{'.'.join(map(str, [*path[:-1], guess]))}'?" if guess
            else f"expected one of {', '.join(known)}" if known else "expected none")
    return f"unknown key '{dotted}' ({hint})"


def name_hint(name: str, known: Sequence[str]) -> str:
    """``did you mean 'x'? expected one of ...`` for a value that must be one of ``known``."""
    guess = suggest(name, known)
    return (f"did you mean {guess!r}? " if guess else "") + f"expected one of {', '.join(known)}"


def _unwrap(annotation: Any) -> Any:
    """The type of ``annotation`` (or of a field) without ``Annotated`` and ``| None``."""
    if isinstance(annotation, FieldInfo):
        annotation = annotation.annotation
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _unwrap(args[0])
    return annotation


def _is_section(annotation: Any) -> bool:
    tp = _unwrap(annotation)
    if typing.get_origin(tp) is dict:
        tp = _unwrap(typing.get_args(tp)[1])
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _locate(model: type[BaseModel], loc: Sequence[Any]) -> tuple[list[Any], Any]:
    """The key path of an error location (without list indices and union members) and what is
    there: a field, or a section's type."""
    node: Any = model
    path: list[Any] = []
    for part in loc:
        tp = _unwrap(node)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            node = tp.model_fields[part]
        elif typing.get_origin(tp) is dict:
            node = typing.get_args(tp)[1]
        else:
            break
        path.append(part)
    return path, node


def _describe(annotation: Any) -> str:
    """What a value of ``annotation`` (or of a field) must be, in words: its description, or its
    type and bounds."""
    meta: list[Any] = []
    if isinstance(annotation, FieldInfo):
        annotation, meta = annotation.annotation, [annotation]
    while typing.get_origin(annotation) is Annotated:
        annotation, *more = typing.get_args(annotation)
        meta += more
    meta += [c for m in meta if isinstance(m, FieldInfo) for c in m.metadata]
    described = [m.description for m in meta if isinstance(m, FieldInfo) and m.description]
    args = typing.get_args(annotation)
    if described:
        return described[0]
    if _is_section(annotation):
        return "a mapping"
    if type(None) in args:
        return _describe(next(a for a in args if a is not type(None))) + " or null"
    if typing.get_origin(annotation) is Literal:
        return f"one of {', '.join(repr(a) for a in args)}"
    if annotation is bool:
        return "true or false"
    noun = "an integer" if annotation is int else "a number"
    bound = {k: getattr(m, k) for m in meta for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    lo, hi = bound.get("ge", bound.get("gt")), bound.get("le", bound.get("lt"))
    if lo is not None and hi is not None:
        return f"{noun} in {'[' if 'ge' in bound else '('}{lo:g}, {hi:g}{']' if 'le' in bound else ')'}"
    return f"{noun} {'>=' if 'ge' in bound else '>'} {lo:g}" if lo is not None else noun


def _reword(model: type[BaseModel], error: Any, raw: dict[str, Any]) -> str:
    """One pydantic error in the project's words."""
    loc = error["loc"]
    if error["type"] == "cabinlift":  # a validator's own sentence
        return error["msg"]
    if error["type"] == "extra_forbidden":
        path, section = _locate(model, loc[:-1])
        return unknown([*path, loc[-1]], list(_unwrap(section).model_fields))
    path, node = _locate(model, loc)
    key = ".".join(map(str, path))
    if error["type"] == "missing" and len(path) == len(loc):  # a key, not a list's item
        return f"missing key '{key}' (expected {_describe(node)})"
    value = functools.reduce(lambda v, part: v[part], path, raw)
    return f"key '{key}' must be {_describe(node)}, got {value!r}"
