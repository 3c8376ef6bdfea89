"""Shared pytest behaviour: the numerics of params.yaml, and tests marked ``mmlab`` need the
OpenMMLab stack.

The tests compute in-process (``cabinlift.cli.main([...])``) under the portable numerics of
params.yaml, whose library settings must be in the environment before NumPy and PyTorch load
(:func:`cabinlift.numerics.prepare`; the ``cabinlift`` command restarts itself with them, a test
process cannot): they are set here, before any test module imports either.

Without the OpenMMLab stack the ``mmlab`` tests are skipped on a developer's machine, but under
``CABINLIFT_REQUIRE_MMLAB=1`` (set by ``make test``, which CI runs) a missing stack fails them,
so CI can never pass while silently skipping the backend's tests.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from cabinlift import numerics

assert "numpy" not in sys.modules and "torch" not in sys.modules, (
    "NumPy or PyTorch was imported before tests/conftest.py could set the numerics environment")
numerics.prepare("portable")
numerics.apply("portable")  # library calls compute as the stages do

import pytest  # noqa: E402

MMLAB_MODULES = ("mmcv", "mmengine", "mmdet", "mmpose", "cv2")


def mmlab_missing() -> list[str]:
    return [m for m in MMLAB_MODULES if importlib.util.find_spec(m) is None]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("mmlab") is None:
        return
    missing = mmlab_missing()
    if not missing:
        return
    message = (f"the OpenMMLab stack is not installed (missing: {', '.join(missing)}); "
               "run `make install-mmlab`")
    if os.environ.get("CABINLIFT_REQUIRE_MMLAB") == "1":
        pytest.fail(f"CABINLIFT_REQUIRE_MMLAB=1 but {message}", pytrace=False)
    pytest.skip(message)
