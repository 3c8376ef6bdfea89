"""`cabinlift check`: params.yaml as a whole, then per stage a manifest of the files params.yaml
names that the stage's chosen backend reads, with their MD5 (what the DVC stages depend on)."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
from cliutil import one_line_error, with_changes, write_params

from cabinlift import cli, config
from cabinlift.errors import CabinliftError
from cabinlift.inputs import MANIFEST_STAGES, stage_inputs

PARAMS = config.read_yaml("params.yaml")
# MD5 of b"abc" and of b"abd" (RFC 1321's test suite has the first).
MD5_ABC = "900150983cd24fb0d6963f7d28e17f72"
MD5_ABD = "4911e516e5aa21d327512e0c8b197616"


def _params(**changes) -> dict:
    return with_changes(copy.deepcopy(PARAMS), **changes)


def _file(path: Path, data: bytes = b"abc") -> str:
    path.write_bytes(data)
    return str(path)


def test_default_backends_read_no_named_file():
    assert {s: stage_inputs(config.build(_params()), s) for s in MANIFEST_STAGES} == {
        "demo": {}, "detect": {}, "keypoints2d": {}, "normalize": {}}


def test_noisy_synthetic_2d_puts_the_detector_model_in_normalize_s_manifest():
    """With pretrain.data.input_2d detector, normalize's manifest holds the detector-error
    params it applies (so changing them re-runs it) and no other stage's manifest changes."""
    params = _params(**{"pretrain.data.input_2d": "detector",
                        "keypoints2d.simulated.noise_scale": 0.25})
    manifest = stage_inputs(config.build(params), "normalize")
    assert manifest == {"detect.simulated": {**PARAMS["detect"]["simulated"]},
                        "keypoints2d.simulated": {**PARAMS["keypoints2d"]["simulated"],
                                                  "noise_scale": 0.25}}
    assert json.loads(json.dumps(manifest))["detect.simulated"]["score_range"] == [0.85, 0.99]
    assert {s: stage_inputs(config.build(params), s) for s in ("demo", "detect", "keypoints2d")
            } == {"demo": {}, "detect": {}, "keypoints2d": {}}


def test_precomputed_files_by_key_with_their_md5(tmp_path):
    results = _file(tmp_path / "kp.json")
    params = _params(**{"keypoints2d.backend": "precomputed",
                        "keypoints2d.precomputed.results": results})
    assert stage_inputs(config.build(params), "keypoints2d") == {
        "keypoints2d.precomputed.results": {"path": results, "md5": MD5_ABC}}
    assert stage_inputs(config.build(params), "detect") == {}  # still simulated: reads no named file
    images = _file(tmp_path / "images.json", b"abd")
    params["keypoints2d"]["precomputed"]["images"] = images
    assert stage_inputs(config.build(params), "keypoints2d")["keypoints2d.precomputed.images"] == {
        "path": images, "md5": MD5_ABD}


def test_missing_precomputed_file_names_its_key(tmp_path):
    params = _params(**{"detect.backend": "precomputed",
                        "detect.precomputed.results": str(tmp_path / "nowhere.json")})
    with pytest.raises(CabinliftError, match=r"key 'detect.precomputed.results': file .*nowhere"
                                             r"\.json not found"):
        stage_inputs(config.build(params), "detect")


def test_mmpose_config_path_and_checkpoints_each_in_its_stage(tmp_path):
    """A changed checkpoint changes the manifest of the stage that reads it, not the other's."""
    det_cfg, det_ckpt = _file(tmp_path / "det.py"), _file(tmp_path / "det.pth")
    kp_cfg, kp_ckpt = _file(tmp_path / "kp.py"), _file(tmp_path / "kp.pth")
    params = _params(**{"detect.backend": "mmpose", "keypoints2d.backend": "mmpose",
                        "detect.mmpose.config": det_cfg, "detect.mmpose.checkpoint": det_ckpt,
                        "keypoints2d.mmpose.config": kp_cfg,
                        "keypoints2d.mmpose.checkpoint": kp_ckpt})
    detect = stage_inputs(config.build(params), "detect")
    assert detect == {"detect.mmpose.config": {"path": det_cfg, "md5": MD5_ABC},
                      "detect.mmpose.checkpoint": {"path": det_ckpt, "md5": MD5_ABC}}
    Path(kp_ckpt).write_bytes(b"abd")
    entry = stage_inputs(config.build(params), "keypoints2d")["keypoints2d.mmpose.checkpoint"]
    assert entry["md5"] == MD5_ABD
    assert stage_inputs(config.build(params), "detect") == detect


def test_missing_checkpoint_is_the_backends_message(tmp_path):
    params = _params(**{"keypoints2d.backend": "mmpose",
                        "keypoints2d.mmpose.config": _file(tmp_path / "kp.py"),
                        "keypoints2d.mmpose.checkpoint": str(tmp_path / "hrnet.pth")})
    with pytest.raises(CabinliftError, match=r"key 'keypoints2d.mmpose.checkpoint': checkpoint "
                                             r"file .*hrnet\.pth not found; download the MMPose"):
        stage_inputs(config.build(params), "keypoints2d")


@pytest.mark.skipif(importlib.util.find_spec("mmdet") is not None,
                    reason="the OpenMMLab stack is installed")
def test_packaged_config_without_the_stack_says_how_to_install():
    params = _params(**{"detect.backend": "mmpose"})
    with pytest.raises(CabinliftError, match="make install-mmlab"):
        stage_inputs(config.build(params), "detect")


@pytest.mark.mmlab
def test_packaged_config_is_recorded_by_name_with_the_package_version(tmp_path):
    """A config named inside the installed package: its MD5, and the pinned package version,
    since the config's base files come with the package."""
    import hashlib
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    pins = dict(line.split("==") for line in (root / "requirements-mmlab.txt").read_text().split()
                if line.startswith(("mmdet==", "mmpose==")))
    params = _params(**{"keypoints2d.backend": "mmpose",
                        "keypoints2d.mmpose.checkpoint": _file(tmp_path / "hrnet.pth")})
    entry = stage_inputs(config.build(params), "keypoints2d")["keypoints2d.mmpose.config"]
    name = PARAMS["keypoints2d"]["mmpose"]["config"]
    shipped = Path(importlib.util.find_spec("mmpose").origin).parent / ".mim" / "configs" / name
    assert entry == {"path": name, "package": f"mmpose {pins['mmpose']}",
                     "md5": hashlib.md5(shipped.read_bytes()).hexdigest()}


def test_check_writes_one_manifest_per_stage(tmp_path, capsys):
    results = _file(tmp_path / "kp.json")
    params = write_params(tmp_path / "params.yaml", PARAMS, **{
        "detect.backend": "precomputed", "detect.precomputed.results": results})
    out = tmp_path / "inputs"
    assert cli.main(["--params", str(params), "check", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "params": "valid", "files": {"demo": 0, "detect": 1, "keypoints2d": 0, "normalize": 0}}
    assert sorted(p.name for p in out.iterdir()) == ["code", "demo.json", "detect.json",
                                                     "keypoints2d.json", "normalize.json",
                                                     "numerics.json"]
    assert sorted(p.name for p in (out / "code").iterdir()) == [
        "demo.json", "detect.json", "evaluate.json", "keypoints2d.json", "normalize.json",
        "report.json", "subsets.json", "training"]
    assert sorted(p.name for p in (out / "code" / "training").iterdir()) == [
        "graformer.json", "graphmlp.json", "jointformer.json", "semgcn.json", "simplebl.json"]
    normalize = json.loads((out / "code" / "normalize.json").read_text())
    assert normalize["stage"] == "normalize" and "cabinlift/skeleton.py" in normalize["files"]
    assert json.loads((out / "numerics.json").read_text())["mode"] == "portable"
    assert json.loads((out / "detect.json").read_text()) == {
        "detect.precomputed.results": {"md5": MD5_ABC, "path": results}}
    assert (out / "demo.json").read_text() == "{}\n"


@pytest.mark.parametrize(("changes", "message"), [
    ({"evaluat": {"alpha": 0.1}}, "unknown key 'evaluat' (did you mean 'evaluate'?)"),
    ({"models": ["simplebl", "semgcm"]}, "key 'models' names unknown model 'semgcm' "
                                         "(did you mean 'semgcn'?"),
    ({"train.lr": -0.001}, "key 'train.lr' must be a number > 0, got -0.001"),
])
def test_check_fails_on_any_params_mistake_and_keeps_the_manifests(tmp_path, capsys, changes,
                                                                     message):
    out = tmp_path / "inputs"
    out.mkdir()
    (out / "detect.json").write_text("{}\n")
    params = write_params(tmp_path / "params.yaml", PARAMS, **changes)
    err = one_line_error(capsys, ["--params", str(params), "check", "--out", str(out)])
    assert f"params.yaml: 1 problem: {message}" in err
    assert [p.name for p in out.iterdir()] == ["detect.json"]


def test_every_stage_of_dvc_yaml_runs_after_check(tmp_path):
    """DVC runs a stage after those it depends on, directly or through other stages: `check`
    must be upstream of every other stage, or a mistake in params.yaml could reach a stage
    (which DVC empties of its outputs first) before `check` reports it."""
    import networkx as nx
    from dvc.repo import Repo

    root = Path(__file__).resolve().parents[1]
    for name in ("dvc.yaml", "params.yaml"):
        (tmp_path / name).write_bytes((root / name).read_bytes())
    Repo.init(str(tmp_path), no_scm=True)
    with Repo(str(tmp_path)) as repo:
        graph = repo.index.graph
        stages = {s.name: s for s in graph.nodes}
        check = stages.pop("check")
        assert check.always_changed and len(stages) >= 17
        late = [name for name, stage in stages.items() if check not in nx.descendants(graph, stage)]
        assert not late, f"stages that do not depend on 'check': {late}"
