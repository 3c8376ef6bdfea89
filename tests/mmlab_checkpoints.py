"""Random-weight checkpoints of the paper's detector and 2D estimator, built from the configs
shipped in the installed mmdet / mmpose packages (no download), in the format their loaders
read (``state_dict`` + ``meta.dataset_meta``)."""

from __future__ import annotations

from pathlib import Path

DET_CONFIG = "faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-1x_coco-person.py"
POSE_CONFIG = "body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_udp-8xb32-210e_coco-384x288.py"


def random_checkpoints(folder: Path) -> tuple[Path, Path]:
    import torch
    from mmdet.apis import init_detector

    from cabinlift.keypoints.mmlab import packaged_config

    torch.manual_seed(0)
    det = init_detector(str(packaged_config(DET_CONFIG, "mmdet", "det")), None, device="cpu")
    det_path = folder / "faster_rcnn_person_random.pth"
    torch.save({"state_dict": det.state_dict(),
                "meta": {"dataset_meta": {"classes": ("person",)}}}, det_path)
    return det_path, random_pose_checkpoint(folder)


def random_pose_checkpoint(folder: Path) -> Path:
    """The 2D estimator's checkpoint alone."""
    from mmpose.apis import init_model

    from cabinlift.keypoints.mmlab import packaged_config

    pose = init_model(str(packaged_config(POSE_CONFIG, "mmpose", "pose")), None, device="cpu")
    pose_path = folder / "hrnet_w48_udp_random.pth"
    import torch

    torch.save({"state_dict": pose.state_dict(), "meta": {}}, pose_path)
    return pose_path
