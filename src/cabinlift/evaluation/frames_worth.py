"""What pre-training is worth in real frames: how many real training frames a model trained from
scratch needs to reach the error of a pre-trained cell.

A gain in millimetres depends on where on the curve it is measured; a count of real frames
does not, and it answers the practical question (how much labelling does synthetic
pre-training save?). The count is read off the model's own scratch curve (mean test MPJPE per
setting, settings ordered by their real training frames), interpolated linearly in
log(frames) because the settings grow geometrically; the first crossing in increasing frames
is taken, so a scratch curve that wobbles back above the target later does not move it. The
curve is only measured between its smallest and largest setting: a target it never reaches,
or already reaches at the smallest, is reported as a one-sided bound, never extrapolated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cabinlift.config import NO_REAL_DATA
from cabinlift.evaluation.aggregate import CellSummary
from cabinlift.evaluation.paired import PairedTest
from cabinlift.evaluation.settings import Setting

#: ``FrameCount.bound``: the count is interpolated on the scratch curve.
INTERPOLATED = "interpolated"
#: ``FrameCount.bound``: not reached within the largest setting; the count is a lower bound.
MORE_THAN = "more_than"
#: ``FrameCount.bound``: reached already at the smallest setting; the count is an upper bound.
AT_MOST = "at_most"


@dataclass(frozen=True)
class FrameCount:
    """A number of real training frames, interpolated or (outside the measured curve) a bound."""

    frames: float
    bound: str = INTERPOLATED  # INTERPOLATED, MORE_THAN or AT_MOST

    def per(self, frames: float) -> FrameCount | None:
        """This count as a multiple of ``frames``, with the same bound (None for 0 frames)."""
        return None if frames <= 0 else FrameCount(self.frames / frames, self.bound)


@dataclass(frozen=True)
class ScratchPoint:
    """One point of a scratch curve: a setting's mean real training frames and mean MPJPE."""

    frames: float
    mpjpe: float


def scratch_frames_to_reach(target: float, curve: Sequence[ScratchPoint]) -> FrameCount:
    """Real frames at which the scratch curve first falls to ``target`` mm (log-linear between
    settings); a bound where the curve does not cross inside its measured range."""
    points = sorted(curve, key=lambda p: p.frames)
    if points[0].mpjpe <= target:
        return FrameCount(points[0].frames, AT_MOST)
    for before, after in itertools.pairwise(points):
        if after.mpjpe <= target:
            share = (before.mpjpe - target) / (before.mpjpe - after.mpjpe)
            log_frames = math.log(before.frames) + share * (
                math.log(after.frames) - math.log(before.frames))
            return FrameCount(math.exp(log_frames))
    return FrameCount(points[-1].frames, MORE_THAN)


@dataclass(frozen=True)
class CellWorth:
    """One pre-trained cell in scratch frames: ``equivalent`` at its mean MPJPE, ``low`` and
    ``high`` at the ends of its 95 % CI (a lower error needs more frames; None for a single
    run), ``ratio`` the equivalent per real frame the cell itself trained on (None with no
    real data)."""

    setting: str
    pt_frames: float
    pt_mpjpe: float
    pt_ci95: float | None
    equivalent: FrameCount
    low: FrameCount | None
    high: FrameCount | None

    @property
    def ratio(self) -> FrameCount | None:
        return self.equivalent.per(self.pt_frames)


def cell_worth(pretrained: CellSummary, curve: Sequence[ScratchPoint]) -> CellWorth:
    """The scratch frames equivalent to one pre-trained cell, with its interval."""
    mean, ci = pretrained.mean, pretrained.ci95
    return CellWorth(
        setting=pretrained.setting,
        pt_frames=pretrained.train_frames,
        pt_mpjpe=mean,
        pt_ci95=ci,
        equivalent=scratch_frames_to_reach(mean, curve),
        low=None if ci is None else scratch_frames_to_reach(mean + ci, curve),
        high=None if ci is None else scratch_frames_to_reach(mean - ci, curve),
    )


def first_not_significant(tests: Sequence[tuple[Setting, float, PairedTest]], alpha: float
                          ) -> Setting | None:
    """The setting with the fewest real frames (``(setting, frames, test)``) whose paired
    pre-trained vs scratch test is not significant at ``alpha``; None if every one is."""
    for setting, _, test in sorted(tests, key=lambda t: t[1]):
        if not test.significant(alpha):
            return setting
    return None


@dataclass(frozen=True)
class ModelWorth:
    """A model's pre-trained cells in scratch frames (the weights before fine-tuning first,
    then the settings in column order) and the smallest amount of real data at which the
    paired gain is not significant (None: significant at every amount)."""

    model: str
    cells: tuple[CellWorth, ...]
    not_significant: Setting | None


def model_worth(cells: Mapping[tuple[str, str, str], CellSummary],
                tests: Mapping[tuple[str, str], PairedTest], model: str,
                settings: Sequence[Setting], alpha: float) -> ModelWorth:
    """What pre-training is worth to ``model``, read off its own scratch curve."""
    curve = [ScratchPoint(c.train_frames, c.mean)
             for c in (cells[model, "scratch", s.name] for s in settings)]
    names = [NO_REAL_DATA, *(s.name for s in settings)]
    significance = [(s, cells[model, "pretrained", s.name].train_frames, tests[model, s.name])
                    for s in settings]
    return ModelWorth(
        model=model,
        cells=tuple(cell_worth(cells[model, "pretrained", n], curve) for n in names),
        not_significant=first_not_significant(significance, alpha),
    )
