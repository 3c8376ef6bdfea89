import numpy as np

from cabinlift.keypoints.driver import box_iou, pick_driver

SIZE = (1280, 1024)
RIGHT = np.array([0.4, 0.0, 1.0, 1.0])


def _select(*args, **kwargs):
    """The driver's index, or None (the reason aside)."""
    return pick_driver(*args, **kwargs)[0]


def test_highest_score_inside_the_region_wins():
    boxes = np.array([
        [100, 300, 400, 900],   # passenger side (centre x 0.20): excluded by the region
        [700, 200, 1100, 900],  # driver, 0.80
        [650, 250, 1000, 800],  # driver side, 0.90 -> chosen
        [800, 100, 1200, 600],  # driver side but below min_score
    ], dtype=float)
    scores = np.array([0.99, 0.80, 0.90, 0.20])
    assert _select(boxes, scores, RIGHT, SIZE, min_score=0.3) == 2
    # without the score floor the 0.20 box still loses to 0.90
    assert _select(boxes, scores, RIGHT, SIZE, min_score=0.0) == 2
    # the whole image as region: the passenger's 0.99 wins
    assert _select(boxes, scores, np.array([0, 0, 1, 1.0]), SIZE, 0.3) == 0


def test_ties_go_to_the_first_box_and_nothing_found_is_none():
    boxes = np.array([[700, 200, 1100, 900], [720, 220, 1120, 920]], dtype=float)
    assert _select(boxes, np.array([0.5, 0.5]), RIGHT, SIZE, 0.3) == 0
    assert _select(boxes, np.array([0.1, 0.2]), RIGHT, SIZE, 0.3) is None
    assert _select(np.zeros((0, 4)), np.zeros(0), RIGHT, SIZE, 0.3) is None


def test_centre_on_the_region_border_counts_as_inside():
    box = np.array([[412, 0, 612, 100]], dtype=float)  # centre x = 512 = 0.4 * 1280
    assert _select(box, np.array([0.9]), RIGHT, SIZE, 0.3) == 0


def test_box_iou_known_values():
    a = np.array([0, 0, 10, 10.0])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], dtype=float)
    np.testing.assert_allclose(box_iou(a, b), [1.0, 50 / 150, 0.0, 0.0])


def test_a_frame_without_driver_says_why():
    """No box at all; boxes only below min_score; boxes that pass min_score only outside the
    region (a box below min_score inside it does not change that)."""
    passenger = [100, 300, 400, 900]  # centre x 0.20
    low_driver = [700, 200, 1100, 900]  # centre x 0.70
    assert pick_driver(np.zeros((0, 4)), np.zeros(0), RIGHT, SIZE, 0.3) == (None, "no_person_box")
    assert pick_driver(np.array([passenger, low_driver], float), np.array([0.2, 0.1]), RIGHT,
                       SIZE, 0.3) == (None, "below_min_score")
    assert pick_driver(np.array([passenger, low_driver], float), np.array([0.9, 0.1]), RIGHT,
                       SIZE, 0.3) == (None, "outside_driver_region")
    assert pick_driver(np.array([passenger, low_driver], float), np.array([0.9, 0.5]), RIGHT,
                       SIZE, 0.3) == (1, "")
