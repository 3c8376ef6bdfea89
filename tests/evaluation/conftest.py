"""Fixtures for the evaluation tests; the inputs themselves are built in evalgrid.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from evalgrid import MODELS, SETTINGS, make_grid, options, typed_settings


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, Path]:
    """(finetuned_root, test_npz) of a complete small grid."""
    return make_grid(tmp_path)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The outputs of one evaluation of the standard grid (shared: rendering costs ~1 s)."""
    from cabinlift.evaluation import run_evaluation

    tmp = tmp_path_factory.mktemp("evaluated")
    root, test_npz = make_grid(tmp)
    return run_evaluation(
        root, test_npz, MODELS, typed_settings(SETTINGS), tmp / "metrics", tmp / "plots",
        options(), pretrain_dir=tmp / "pretrain", train_npz=test_npz.with_name("real_train.npz"),
        subsets_dir=test_npz.with_name("subsets"),
    )


@pytest.fixture
def run_eval() -> Callable[..., dict[str, Path]]:
    from cabinlift.evaluation import run_evaluation

    def _run(root: Path, test_npz: Path, out: Path, **kw) -> dict[str, Path]:
        """Evaluate; the training pool and subsets are those next to ``test_npz`` unless
        given."""
        kw.setdefault("train_npz", test_npz.with_name("real_train.npz"))
        kw.setdefault("subsets_dir", test_npz.with_name("subsets"))
        opts = options(**{k: kw.pop(k) for k in ("qualitative", "pck", "alpha",
                                                  "per_joint_setting") if k in kw})
        return run_evaluation(
            root, test_npz, kw.pop("models", MODELS), typed_settings(kw.pop("settings", SETTINGS)),
            out / "metrics", out / "plots", opts, **kw,
        )

    return _run
