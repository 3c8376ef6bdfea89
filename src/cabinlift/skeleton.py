"""Joint names, orders and index maps of every skeleton the pipeline touches.

Three orders meet here: Drive&Act's openpose_3d CSV (OpenPose BODY_25 + ``background``, in the
files' own column order), COCO-17 (what 2D estimators output) and SyntheticCabin's keypoint list
(COCO-17 with the five face joints rotated). The lifters see COCO-13: COCO joints 0-12.
"""

from __future__ import annotations

#: Joint groups of a Drive&Act ``openpose_3d`` CSV, in the column order of the files.
DRIVE_ACT_JOINTS: tuple[str, ...] = (
    "nose", "lElbow", "lWrist", "rHeel", "rHip", "rSmallToe", "neck", "lSmallToe", "rWrist",
    "rAnkle", "lHip", "lHeel", "lKnee", "lEye", "midHip", "background", "lEar", "rElbow",
    "rShoulder", "rKnee", "lShoulder", "lBigToe", "rEye", "rEar", "rBigToe", "lAnkle",
)

#: COCO-17 keypoint names in COCO index order.
COCO17: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
    "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)

#: The 13 upper-body joints the lifters use (COCO indices 0-12).
COCO13: tuple[str, ...] = COCO17[:13]
NUM_JOINTS: int = len(COCO13)

#: BODY_25 (Drive&Act) name of each COCO-17 joint, in COCO order.
COCO17_TO_BODY25: tuple[str, ...] = (
    "nose", "lEye", "rEye", "lEar", "rEar", "lShoulder", "rShoulder", "lElbow", "rElbow",
    "lWrist", "rWrist", "lHip", "rHip", "lKnee", "rKnee", "lAnkle", "rAnkle",
)

#: SyntheticCabin keypoint order of the first 17 keypoints: the five face joints come first as
#: [l_eye, r_eye, l_ear, r_ear, nose], then shoulders ... ankles in COCO order.
SYNTHETIC_CABIN17: tuple[str, ...] = (
    "l_eye", "r_eye", "l_ear", "r_ear", "nose", *COCO17[5:],
)

#: For each COCO-17 index, the index of that joint in a SyntheticCabin keypoint list.
SYNTHETIC_TO_COCO17: tuple[int, ...] = tuple(SYNTHETIC_CABIN17.index(n) for n in COCO17)

#: COCO's skeleton restricted to the 13 upper-body joints: 15 undirected edges.
COCO13_EDGES: tuple[tuple[int, int], ...] = (
    (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

#: Nose-left shoulder and nose-right shoulder: the two edges by which a 17-edge upper-body graph
#: (used by the paper authors' SemGCN and GraFormer) extends :data:`COCO13_EDGES`.
COCO13_NOSE_SHOULDER_EDGES: tuple[tuple[int, int], ...] = ((0, 5), (0, 6))

#: Left/right joint pairs of COCO-13 (eyes, ears, shoulders, elbows, wrists, hips).
COCO13_FLIP_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12))

#: COCO-13 as a tree rooted at the neck (the midpoint of the shoulders, no joint of its own:
#: parent -1): ``(parent, child)`` bones, each after its parent's; the head hangs from the neck
#: by the nose, the hips from the shoulders. Bone-length augmentation scales them outward.
COCO13_TREE: tuple[tuple[int, int], ...] = (
    (-1, 5), (-1, 6), (5, 7), (6, 8), (7, 9), (8, 10), (5, 11), (6, 12),
    (-1, 0), (0, 1), (0, 2), (1, 3), (2, 4),
)

#: COCO's per-keypoint OKS sigmas (COCO-17 order); the simulated detector scales its noise by them.
COCO17_OKS_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)

L_SHOULDER: int = COCO17.index("l_shoulder")
R_SHOULDER: int = COCO17.index("r_shoulder")

#: SyntheticCabin's ten camera views (the demo renders all of them; the paper pre-trains on
#: OMS_01, Dashboard and Front).
SYNTHETIC_VIEWS: tuple[str, ...] = (
    "A_Pillar_Codriver", "A_Pillar_Driver", "Dashboard", "Front", "Front_Left", "Front_Right",
    "Front_TopLeft", "Front_TopRight", "OMS_01", "Rear_Mirror",
)
