"""Manifests of the files params.yaml names, so that DVC re-runs a stage when one changes.

DVC re-runs a stage when a path listed in its ``deps`` changes, but some of the files a stage
reads are named by a parameter: the ``precomputed`` backend's COCO-format keypoints (and the
COCO ``images`` file), the ``mmpose`` backend's configs (given as a path) and checkpoints.
Listing ``${detect.precomputed.results}`` as a dependency would not do: a dependency that does
not exist fails every ``dvc repro``, also with the default backend that never reads the file.

So the pipeline's first stage, ``check`` (``cabinlift check``; run on every ``dvc repro``),
writes for each stage a small JSON manifest of the files that the stage's chosen backend
reads: per params key, the path and the MD5 of the file's bytes. ``detect`` and
``keypoints2d`` depend on their manifest: a changed file changes the manifest of exactly the
stages that read it, and while nothing changes the manifests keep their bytes and nothing
re-runs. ``normalize`` depends in the same way on the params that only a knob makes it
read: with ``pretrain.data.input_2d: detector`` its manifest holds the simulated detector's
sections (``detect.simulated``, ``keypoints2d.simulated``), which it then applies to the
synthetic 2D (else it is empty); declaring them as the stage's params in dvc.yaml would re-run
it for nothing while the knob is off, and fail DVC where a backend other than ``simulated`` lets
those sections be left out. ``demo`` reads no such file; its (empty) manifest makes it, like
every other stage (through its inputs), run after ``check``, which is what lets a mistake in
params.yaml stop ``dvc repro`` before DVC deletes any stage's outputs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

from cabinlift import numerics, sources
from cabinlift.atomic import write_atomic
from cabinlift.config import Params, Section
from cabinlift.errors import CabinliftError

#: The stages that depend on a manifest ``<stage>.json`` written by the ``check`` stage.
MANIFEST_STAGES: tuple[str, ...] = ("demo", "detect", "keypoints2d", "normalize")
#: The OpenMMLab package that ships the default config of each stage's ``mmpose`` backend.
_CONFIG_PACKAGE = {"detect": "mmdet", "keypoints2d": "mmpose"}
#: What each checkpoint is, in the ``mmpose`` backend's own "not found" message.
_CHECKPOINT_WHAT = {"detect": "MMDetection Faster R-CNN", "keypoints2d": "MMPose HRNet"}


def md5_of(path: Path) -> str:
    """MD5 of a file's bytes (the hash DVC records, so ``md5sum`` can be compared with it)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _entry(path: Path, **extra: Any) -> dict[str, Any]:
    return {"path": str(path), "md5": md5_of(path), **extra}


def _precomputed(stage: str, cfg: Section, src: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name, what in (("results", "COCO-format keypoint results JSON"),
                       ("images", "COCO JSON whose 'images' the results refer to")):
        value = getattr(cfg, name)
        if value is None:
            continue
        key = f"{stage}.precomputed.{name}"
        path = Path(value)
        if not path.is_file():
            raise CabinliftError(f"{src}: key '{key}': file {path} not found (expected the {what})")
        out[key] = _entry(path)
    return out


def _mmpose(stage: str, cfg: Section) -> dict[str, dict[str, Any]]:
    """The config (a file, or a name inside the installed package, recorded with the package's
    version since the file's base configs come with it) and the checkpoint, found the way the
    backend finds them, so a missing one is the backend's own one-line error."""
    from cabinlift.keypoints import mmlab

    package, key = _CONFIG_PACKAGE[stage], f"{stage}.mmpose"
    name = cfg.config
    extra: dict[str, Any] = {}
    if not Path(name).is_file():
        if importlib.util.find_spec(package) is None:
            mmlab._require_stack()  # the install hint
        extra["package"] = f"{package} {importlib.metadata.version(package)}"
    config = mmlab.packaged_config(name, package, f"{key}.config")
    checkpoint = mmlab.checkpoint_path(cfg.checkpoint, f"{key}.checkpoint",
                                       _CHECKPOINT_WHAT[stage])
    return {
        f"{key}.config": {**_entry(config), "path": name, **extra},
        f"{key}.checkpoint": _entry(checkpoint),
    }


def _detector_model(params: Params) -> dict[str, dict[str, Any]]:
    """``{params key: values}`` of the detector-error model normalize applies to the synthetic
    training 2D with ``pretrain.data.input_2d: detector`` (empty otherwise)."""
    if params.pretrain.data.input_2d != "detector":
        return {}
    return {f"{stage}.simulated": getattr(params, stage).simulated.model_dump(mode="json")
            for stage in ("detect", "keypoints2d")}


def stage_inputs(params: Params, stage: str) -> dict[str, dict[str, Any]]:
    """``{params key: {"path", "md5"[, "package"]}}`` of every file that params.yaml names and
    ``stage`` reads with its chosen backend (empty for the ``simulated`` backend and ``demo``);
    for ``normalize``, the params its knobs make it read (:func:`_detector_model`).

    A file that is missing is a one-line error naming its key, before any stage has run."""
    if stage not in MANIFEST_STAGES:
        raise ValueError(f"no manifest for stage {stage!r}")
    if stage == "demo":
        return {}
    if stage == "normalize":
        return _detector_model(params)
    section = getattr(params, stage)
    backend = section.backend
    cfg = getattr(section, backend)
    if backend == "precomputed":
        return _precomputed(stage, cfg, params.source)
    if backend == "mmpose":
        return _mmpose(stage, cfg)
    return {}


def stage_code(stage: str, root: Path = sources.PACKAGE_ROOT) -> dict[str, Any]:
    """The package modules stage ``stage`` executes and their SHA-256 (:mod:`cabinlift.sources`):
    the stage depends on this manifest, so editing any of them re-runs it."""
    return {"stage": stage, **sources.digest_of(sources.stage_modules(stage, root), root)}


def training_code(model: str, root: Path = sources.PACKAGE_ROOT) -> dict[str, Any]:
    """The modules a training run of ``model`` executes, as the run store keys them
    (:func:`cabinlift.training.store.code_version`): the pretrain and finetune stages of
    ``model`` depend on this manifest, so DVC re-runs them exactly when their runs' store keys
    change."""
    return {"model": model, **sources.digest_of(sources.training_modules(model, root), root)}


def code_manifests(root: Path = sources.PACKAGE_ROOT) -> dict[str, dict[str, Any]]:
    """Every code manifest by its path under the manifest folder: ``code/<stage>.json`` per
    stage of :data:`cabinlift.sources.STAGE_ENTRIES`, ``code/training/<model>.json`` per
    registered lifter. ``root`` is the package folder whose sources are read (the running
    code's by default)."""
    from cabinlift.lifters import REGISTRY

    out = {f"code/{stage}.json": stage_code(stage, root) for stage in sources.STAGE_ENTRIES}
    out.update({f"code/training/{m}.json": training_code(m, root) for m in REGISTRY})
    return out


def write_manifests(params: Params, out_dir: Path, root: Path = sources.PACKAGE_ROOT
                    ) -> dict[str, int]:
    """Write ``<out_dir>/<stage>.json`` for every stage of :data:`MANIFEST_STAGES`, the code
    manifests (:func:`code_manifests`) and ``<out_dir>/numerics.json``, the numerics regime of
    this process (:func:`cabinlift.numerics.regime`; all are computed before any is written);
    return the number of files each stage's input manifest lists."""
    manifests = {f"{stage}.json": stage_inputs(params, stage) for stage in MANIFEST_STAGES}
    manifests.update(code_manifests(root))
    manifests["numerics.json"] = numerics.regime()
    for name, content in manifests.items():
        write_atomic(out_dir / name, json.dumps(content, indent=2, sort_keys=True) + "\n")
    return {stage: len(manifests[f"{stage}.json"]) for stage in MANIFEST_STAGES}
