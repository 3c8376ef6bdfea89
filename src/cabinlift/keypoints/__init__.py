"""Driver detection and COCO-17 2D keypoints for the sampled frames of each recording.

Every backend (``simulated``, ``mmpose``, ``precomputed``) writes the same interim files
(:mod:`cabinlift.keypoints.interim`), so everything after ``keypoints2d`` is backend-agnostic.
"""
