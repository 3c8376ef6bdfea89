"""What params.yaml names must exist on this machine and in the data, checked before any stage.

DVC empties a stage's outputs before it runs the stage's command, so a mistake that a stage
finds itself has already cost that stage's outputs (and a later stage's, when it is found late).
:mod:`cabinlift.config` checks params.yaml on its own; this module checks it against what it
names, in the pipeline's first stage (``cabinlift check``), every problem in one message:

* devices: ``train.device`` and the ``mmpose`` backends' devices exist on this machine (with the
  local executor; on Ray they are the cluster's, checked by the rules of :mod:`cabinlift.config`);
* data roots: ``data.real.root`` is a Drive&Act root, ``data.synthetic.root`` a SyntheticCabin
  root; a root inside the folder the pipeline's ``demo`` stage writes is what that stage will
  write for params.yaml's ``demo`` section (known without writing it), so a view that
  ``data.synthetic.views`` uses must be among ``demo.synthetic.views``;
* split members: every subject and virtual human of ``normalize.*_splits`` is in the data
  (:mod:`cabinlift.splits`; the virtual humans of a SyntheticCabin copy are known only once its
  JSON files are parsed, so there the ``normalize`` stage checks them);
* the example frame: ``evaluate.qualitative`` names a recording of a test subject and a frame
  the pipeline samples from it.

What only a stage can see remains its own error: a frame the detector misses or ``normalize``
drops, a file that is malformed inside, a subject with too few frames for ``subsets``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from cabinlift.config import Params
from cabinlift.errors import CabinliftError
from cabinlift.splits import describe, missing_members
from cabinlift.validation import report, suggest

#: The pipeline file whose ``demo`` stage's output folder is the demo data's home.
PIPELINE = Path("dvc.yaml")
_DRIVE_ACT = "a Drive&Act root containing openpose_3d/vpN/<run>.ids_1.openpose.3d.csv"


@dataclass(frozen=True)
class RealData:
    """The recordings under ``data.real.root``: their subjects and, on request, frame ids."""

    root: Path
    subject_of: dict[str, int]  # file id -> subject
    frames: Callable[[str], np.ndarray]  # file id -> its frame ids


def demo_output(pipeline: Path = PIPELINE) -> Path | None:
    """The folder the pipeline's ``demo`` stage writes (its output in ``pipeline``), or None
    without a pipeline file or ``demo`` stage (``cabinlift check`` outside a checkout)."""
    if not pipeline.is_file():
        return None
    stage = ((yaml.safe_load(pipeline.read_text()) or {}).get("stages") or {}).get("demo") or {}
    outs = stage.get("outs") or []
    if not outs:
        return None
    first = outs[0]
    return Path(next(iter(first)) if isinstance(first, dict) else first)


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder.resolve())


def _demo_root(key: str, root: Path, demo_out: Path, folder: str) -> Iterator[str]:
    if root.resolve() != (demo_out / folder).resolve():
        yield (f"key '{key}' is {str(root)!r}, inside the folder the demo stage writes "
               f"({demo_out}), whose data set of this kind is {demo_out / folder}")


def _devices(params: Params) -> Iterator[str]:
    """The devices the local executor's units compute on exist here (decided as the stages
    decide them, :func:`cabinlift.executors.unit_device`: on Ray they are the tasks')."""
    from cabinlift.executors import unit_device

    named = [("train.device", params.train.device)]
    named += [(f"{stage}.mmpose.device", getattr(params, stage).mmpose.device)
              for stage in ("detect", "keypoints2d") if getattr(params, stage).backend == "mmpose"]
    for key, name in named:
        try:
            unit_device(params.executor, name, f"key '{key}'")
        except CabinliftError as exc:
            yield str(exc)


def real_data(params: Params, demo_out: Path | None) -> tuple[RealData | None, list[str]]:
    """The recordings ``data.real.root`` holds, or will hold once the demo stage has run."""
    from cabinlift.datacheck import full_copy_problem
    from cabinlift.demo.generate import REAL_FOLDER, recordings
    from cabinlift.formats.drive_act import discover_recordings, read_openpose3d

    root = Path(params.data.real.root)
    if _inside(root, demo_out):
        found = list(_demo_root("data.real.root", root, demo_out, REAL_FOLDER))
        if found:
            return None, found
        demo = recordings(params.demo)
        return RealData(root, {f: s for f, (s, _) in demo.items()},
                        lambda f: np.arange(demo[f][1])), []
    if not root.is_dir():
        return None, [f"key 'data.real.root' names {root}, which is not a folder (expected "
                      f"{_DRIVE_ACT})"]
    full = full_copy_problem(root)
    if full:
        return None, [f"key 'data.real.root': {full}"]
    try:
        recs = {r.file_id: r for r in discover_recordings(root)}
    except CabinliftError as exc:
        return None, [f"key 'data.real.root': {exc}"]
    return RealData(root, {f: r.subject for f, r in recs.items()},
                    lambda f: read_openpose3d(recs[f].pose3d_path).frame_id), []


def synthetic_humans(params: Params, demo_out: Path | None) -> tuple[set[str] | None, list[str]]:
    """The virtual humans ``data.synthetic.root`` will hold when the demo writes it (None: known
    only by parsing its files), and the problems of the root and its views."""
    from cabinlift.demo.generate import SYNTHETIC_FOLDER, human_name
    from cabinlift.formats.synthetic_cabin import GT_FOLDER

    root, views = Path(params.data.synthetic.root), params.data.synthetic.views
    if _inside(root, demo_out):
        found = list(_demo_root("data.synthetic.root", root, demo_out, SYNTHETIC_FOLDER))
        written = params.demo.synthetic.views
        found += [f"key 'data.synthetic.views' names view {v!r}, which the demo data set does not "
                  f"have (its views are 'demo.synthetic.views': {', '.join(written)})"
                  for v in views if v not in written]
        return {human_name(h) for h in range(1, params.demo.synthetic.humans + 1)}, found
    if not (root / GT_FOLDER).is_dir():
        what = "is not a folder" if not root.is_dir() else "has no gt_jsons/ folder"
        return None, [f"key 'data.synthetic.root' names {root}, which {what} (expected a "
                      f"SyntheticCabin root containing gt_jsons/*.json)"]
    return None, []


def _example_frame(params: Params, real: RealData) -> Iterator[str]:
    """``evaluate.qualitative`` names a recording of a test subject and a sampled frame of it."""
    q, key = params.evaluate.qualitative, "evaluate.qualitative"
    if q.file_id is None:
        return
    if q.file_id not in real.subject_of:
        guess = suggest(q.file_id, sorted(real.subject_of))
        hint = (f"did you mean {guess!r}?" if guess else
                f"file ids look like {next(iter(real.subject_of), 'vpN/<run>.ids_1')!r}")
        yield (f"key '{key}.file_id' is {q.file_id!r}, which is not a recording of {real.root} "
               f"({hint})")
        return
    subject, test = real.subject_of[q.file_id], params.normalize.real_splits.test
    if subject not in test:
        yield (f"key '{key}.file_id' is {q.file_id!r}, a recording of subject {subject}, which is "
               f"not in the test split 'normalize.real_splits.test' ({describe(test)})")
    try:
        frames = real.frames(q.file_id)
    except CabinliftError as exc:
        yield f"key '{key}.file_id': {exc}"
        return
    stride = params.data.real.frame_stride
    sampled = frames[frames % stride == 0]
    if q.frame_id not in sampled:
        shown = (", ".join(map(str, sampled[:2])) + f", ..., {sampled[-1]}" if len(sampled) > 3
                 else ", ".join(map(str, sampled)) or "none")
        yield (f"key '{key}.frame_id' is {q.frame_id}, which is not a frame the pipeline samples "
               f"from {q.file_id!r} (every {stride}th, 'data.real.frame_stride', of its "
               f"{len(frames)}: {shown})")


def problems(params: Params, demo_out: Path | None) -> list[str]:
    """Every problem of ``params`` against this machine and the data (see the module
    docstring); ``demo_out`` is the folder the demo stage writes (:func:`demo_output`)."""
    found = list(_devices(params))
    real, here = real_data(params, demo_out)
    found += here
    humans, here = synthetic_humans(params, demo_out)
    found += here
    if real is not None:
        found += missing_members("normalize.real_splits", params.normalize.real_splits,
                                 set(real.subject_of.values()), "subject", str(real.root))
        found += _example_frame(params, real)
    if humans is not None:
        found += missing_members("normalize.synthetic_splits", params.normalize.synthetic_splits,
                                 humans, "human", params.data.synthetic.root)
    return found


def check(params: Params, demo_out: Path | None) -> None:
    """Raise one error listing every problem :func:`problems` finds."""
    found = problems(params, demo_out)
    if found:
        raise CabinliftError(report(params.source, found))
