"""Rows of the "What happens when…" table of docs/operations.md for ``cabinlift lift``: keypoints
nobody labelled, an interim CSV that is not UTF-8, ``--out`` below a file. Each function runs the
real command in the working folder (as :func:`test_what_happens.produce` arranges) and returns
what it printed; :data:`CASES` gives each its "When…" text, in the form of
``test_what_happens.CASES``.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from test_what_happens import _coco_json, _error, _untrained_checkpoint

from cabinlift import cli
from cabinlift.keypoints.interim import Keypoints2D, write_keypoints
from cabinlift.skeleton import COCO17

_UNLABELLED = ("l_ear", "r_ear")  # COCO writes them as x = 0, y = 0, v = 0
_FOUR_FOUND = ("nose", "l_shoulder", "r_shoulder", "l_elbow")  # below min_valid_joints (5)


def _summary(argv: list[str]) -> str:
    """The summary line a successful ``cabinlift <argv>`` prints (its standard output)."""
    out = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(out):
        status = cli.main(argv)
    assert status == 0, out.getvalue()
    return out.getvalue().strip()


def lift_coco_with_unlabelled_keypoints() -> str:
    """Not an error: the first person's ears are unlabelled (lifted without them, and named in
    the output's ``missing``); the second has only four keypoints labelled (skipped,
    ``few_valid_joints``). What the command prints is its summary line."""
    doc = json.loads(_coco_json().read_text())
    first, second = doc["annotations"]
    kp = np.asarray(first["keypoints"], dtype=float).reshape(17, 3)
    for name in _UNLABELLED:
        kp[COCO17.index(name)] = 0.0
    first["keypoints"] = kp.ravel().tolist()
    kp = np.asarray(second["keypoints"], dtype=float).reshape(17, 3)
    kp[[COCO17.index(n) for n in COCO17 if n not in _FOUR_FOUND]] = 0.0
    second["keypoints"] = kp.ravel().tolist()
    Path("pose.json").write_text(json.dumps(doc))
    return _summary(["lift", "--checkpoint", str(_untrained_checkpoint()),
                     "--input", "pose.json", "--out", "lifted.json"])


def lift_interim_csv_with_bytes_that_are_not_utf8() -> str:
    doc = json.loads(_coco_json().read_text())
    kp = np.asarray(doc["annotations"][0]["keypoints"], dtype=float).reshape(1, 17, 3)
    csv = Path("data/interim/keypoints2d/vp1/run1b_2018-05-29-14-02-47.ids_1.keypoints2d.csv")
    write_keypoints(csv, Keypoints2D(frame_id=np.array([0]), detected=np.array([True]),
                                     xy=kp[..., :2], scores=kp[..., 2]))
    with open(csv, "ab") as f:
        f.write(b"\x00\x00\xff\xfe")
    return _error(["lift", "--checkpoint", str(_untrained_checkpoint()),
                   "--input", str(csv), "--out", "lifted.npz"])


def lift_out_below_a_file() -> str:
    Path("notes.txt").write_text("my notes\n")
    return _error(["lift", "--checkpoint", str(_untrained_checkpoint()),
                   "--input", str(_coco_json()), "--out", "notes.txt/lifted.npz"])


CASES: dict[str, tuple[str, Callable[..., str]]] = {
    "lift_unlabelled": (
        "`cabinlift lift` gets a COCO annotation with unlabelled keypoints (`x = 0, y = 0, "
        "v = 0`: both ears of one person) and one with only four keypoints labelled: it lifts "
        "the first without its ears, names them in the output's `missing`, skips the second "
        "and prints",
        lift_coco_with_unlabelled_keypoints),
    "lift_csv_bytes": (
        "`cabinlift lift` gets an interim keypoints CSV that ends in bytes that are not UTF-8 "
        "(`printf '\\x00\\x00\\xff\\xfe' >> <csv>`)",
        lift_interim_csv_with_bytes_that_are_not_utf8),
    "lift_out_file": (
        "`cabinlift lift --out notes.txt/lifted.npz` where `notes.txt` is a file",
        lift_out_below_a_file),
}
