"""Frames of a Drive&Act inner_mirror video at the sampled frame ids, read with OpenCV.

Frame id ``k`` of the openpose_3d CSV is the ``k``-th decoded frame of ``<run>.ids_1.mp4``
(both count from 0 at the start of the recording). Frames are decoded in order and only the
sampled ones are kept (``grab`` for the others), which is faster than seeking in an mp4.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cabinlift.errors import CabinliftError


def read_frames(
    path: Path, frame_ids: np.ndarray, image_size: tuple[int, int]
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_id, BGR image)`` for every id in ``frame_ids`` (ascending).

    ``image_size`` (width, height) comes from the recording's calibration; a video of another
    size, one that cannot be opened, or one that ends before the last sampled frame is a
    one-line error naming the file.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise CabinliftError(
            f"{path}: video not found (the mmpose backend reads the inner_mirror NIR video "
            f"beside the calibration file)"
        )
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise CabinliftError(f"{path}: cannot open the video (expected an mp4 OpenCV can decode)")
        wanted = np.asarray(frame_ids, dtype=np.int64)
        if len(wanted) and np.any(np.diff(wanted) <= 0):
            raise ValueError("frame_ids must be strictly increasing")
        pos = 0
        for fid in wanted.tolist():
            while pos < fid:
                if not cap.grab():
                    raise _ended(path, pos, fid)
                pos += 1
            ok, image = cap.read()
            if not ok or image is None:
                raise _ended(path, pos, fid)
            pos += 1
            if (image.shape[1], image.shape[0]) != tuple(image_size):
                raise CabinliftError(
                    f"{path}: frame {fid} is {image.shape[1]}x{image.shape[0]} pixels; expected "
                    f"{image_size[0]}x{image_size[1]} as in the calibration's img_size"
                )
            yield fid, image
    finally:
        cap.release()


def _ended(path: Path, decoded: int, wanted: int) -> CabinliftError:
    if decoded == 0:
        return CabinliftError(f"{path}: no frame could be decoded (expected an mp4 video)")
    return CabinliftError(
        f"{path}: the video ends after {decoded} frames, but the openpose_3d CSV has frame "
        f"{wanted} (expected one video frame per CSV frame id)"
    )
