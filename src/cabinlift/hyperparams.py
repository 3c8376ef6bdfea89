"""What the lifters and the rest of the package agree on, without torch or pydantic: a lifter's
typed, frozen config of hyper-parameters, and the reductions of its training loss.

A lifter module declares its hyper-parameters as a frozen dataclass deriving from
:class:`HyperParameters`: every field is required, its annotation says what it may hold
(:data:`Size`, :data:`Rate`, ``bool`` or a ``Literal`` of choices), and rules across fields
are its :meth:`~HyperParameters.rules`. Building one checks it and raises
:class:`HyperParameterError` naming every problem. The params check (:mod:`cabinlift.config`)
asks the same :meth:`~HyperParameters.problems` of ``lifters.<model>`` in params.yaml, naming
the keys as they are written there.

This module imports only the standard library and :mod:`cabinlift.errors`: it is part of the
ground floor that a lifter copied out of the package takes along (README, "Lifters").
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

from cabinlift.errors import CabinliftError

#: Reductions of a lifter's training loss over a batch (``Lifter.training_loss``,
#: ``train.loss_reduction``; see :func:`cabinlift.lifters.losses.loss_denominator`).
LOSS_REDUCTIONS: tuple[str, ...] = ("coordinate_mean", "xyz_sum_joint_mean")


@dataclasses.dataclass(frozen=True)
class Expect:
    """What a hyper-parameter must hold: in words (for messages) and as a test of a value."""

    text: str
    ok: Callable[[Any], bool]


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


#: A width, a depth or a count.
Size = Annotated[int, Expect("an integer >= 1", lambda v: _integer(v) and v >= 1)]
#: A probability (of dropping a unit, a path, an attention weight).
Rate = Annotated[float, Expect("a number in [0, 1]", lambda v: _number(v) and 0 <= v <= 1)]


def expectation(annotation: Any) -> Expect:
    """What a field annotated ``annotation`` must hold."""
    if typing.get_origin(annotation) is Annotated:
        return next(m for m in annotation.__metadata__ if isinstance(m, Expect))
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        return Expect(f"one of {', '.join(repr(c) for c in choices)}",
                      lambda v: isinstance(v, str) and v in choices)
    if annotation is bool:
        return Expect("true or false", lambda v: isinstance(v, bool))
    raise TypeError(f"a hyper-parameter is a Size, a Rate, a bool or a Literal, not {annotation!r}")


class HyperParameterError(CabinliftError):
    """A lifter config built with values its fields or rules refuse."""


def quoted(name: str) -> str:
    """How a config names its field ``name`` in its own messages."""
    return f"'{name}'"


@dataclasses.dataclass(frozen=True, kw_only=True)
class HyperParameters:
    """Base of a lifter's config: a frozen dataclass whose fields are the keyword arguments of
    the lifter's constructor that params.yaml sets, all required, checked when it is built."""

    def __post_init__(self) -> None:
        found = self.problems({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if found:
            raise HyperParameterError(f"bad {type(self).__name__}: {'; '.join(found)}")

    @classmethod
    def expected(cls) -> dict[str, Expect]:
        """Each field, in order, and what it must hold."""
        hints = typing.get_type_hints(cls, include_extras=True)
        return {f.name: expectation(hints[f.name]) for f in dataclasses.fields(cls)}

    @classmethod
    def problems(cls, values: Mapping[str, Any], key: Callable[[str], str] = quoted
                 ) -> list[str]:
        """Every problem of the fields in ``values``, each a sentence that names a field ``f`` as
        ``key(f)``; the :meth:`rules` are asked once every field is there and holds what it
        must."""
        expected = cls.expected()
        found = [f"{key(name)} must be {e.text}, got {values[name]!r}"
                 for name, e in expected.items() if name in values and not e.ok(values[name])]
        return found or ([] if set(expected) - set(values) else list(cls.rules(values, key)))

    @classmethod
    def rules(cls, values: Mapping[str, Any], key: Callable[[str], str] = quoted
              ) -> Iterable[str]:
        """The config's own rules across fields (none here), as :meth:`problems` words them."""
        return ()
