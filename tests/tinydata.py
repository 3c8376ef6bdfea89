"""Small processed arrays and subsets (the files normalize and subsets write), for tests of
the training stages that do not need the pipeline before them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cabinlift import config
from cabinlift.arrays import save_arrays
from cabinlift.subsets import write_subsets


def _split(rng: np.random.Generator, n: int, subjects) -> dict[str, np.ndarray]:
    x = rng.normal(size=(n, 13, 2)).astype(np.float32)
    y = (x.reshape(n, 26) @ rng.normal(size=(26, 39))).reshape(n, 13, 3) * 100
    mask = rng.random((n, 13)) > 0.1
    mask[:, 5] = True  # every frame has a valid joint
    return {"x2d": x, "y3d": y.astype(np.float32), "mask": mask,
            "subject": np.asarray(subjects, np.int64)}


def write_processed(folder: Path, params: dict, subsets: Path | None = None) -> Path:
    """``real_*`` (8 training subjects of 40 frames), ``synthetic_*`` and the subsets of the
    settings in ``params`` (into ``subsets``, default ``folder/subsets``); returns ``folder``."""
    rng = np.random.default_rng(0)
    train_subjects = np.repeat(np.arange(1, 9), 40)
    save_arrays(folder / "real_train.npz", _split(rng, 320, train_subjects))
    save_arrays(folder / "real_val.npz", _split(rng, 40, np.full(40, 10)))
    save_arrays(folder / "real_test.npz", _split(rng, 60, np.full(60, 11)))
    for split in ("train", "val", "test"):
        save_arrays(folder / f"synthetic_{split}.npz", _split(rng, 100, np.zeros(100)))
    write_subsets(train_subjects, config.build(params).setting_defs(), 0, 2,
                  folder / "subsets" if subsets is None else subsets)
    return folder
