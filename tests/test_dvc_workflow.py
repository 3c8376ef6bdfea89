"""The everyday DVC commands on this pipeline, through the real DVC in throw-away repositories:
a params.yaml mistake stops `dvc repro` with the project's message before any stage deletes
anything, a changed file that params.yaml names re-runs exactly the stages that read it,
`dvc exp run -S` changes one line of params.yaml, and `cabinlift exps` shows experiments."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from cliutil import typed
from dvcrepo import DVC, ROOT, base_params, make_repo, run
from test_pipeline_realdata_e2e import coco_keypoints

from cabinlift.demo.generate import recordings

pytestmark = pytest.mark.slow
WIDTH = 100


def small_params() -> dict:
    """The demo pipeline cut to one small model, two settings and a few subjects (~1 min)."""
    p = base_params()
    p["demo"]["real"].update(subjects=6, runs_per_subject=1, single_run_subjects=[],
                             seconds_per_run=20.0)
    p["demo"]["synthetic"].update(humans=4, poses_per_human=10)
    p["models"] = ["simplebl"]
    p["settings"] = ["pct50", "subj2"]
    p["subsets"]["settings"] = {
        "pct50": {"subjects": 1, "fraction": 0.5, "repetitions": 2, "seeds": 1},
        "subj2": {"subjects": 2, "fraction": 1.0, "repetitions": 1, "seeds": 1}}
    p["normalize"]["real_splits"] = {"train": [1, 2, 3], "val": [4], "test": [5, 6]}
    p["normalize"]["synthetic_splits"] = {"train": ["human_01", "human_02"], "val": ["human_03"],
                                          "test": ["human_04"]}
    p["train"].update(max_epochs=2, val_every=1)
    p["pretrain"]["seeds"] = 1
    p["lifters"]["simplebl"].update(linear_size=32, num_stage=1, dropout=0.5)
    return p


def _commit_all(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """The pipeline reproduced and committed (outputs in DVC's cache, metrics in git)."""
    repo = make_repo(tmp_path_factory.mktemp("workflow"), small_params())
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    run(DVC + ["repro"], repo)
    _commit_all(repo, "pipeline")
    return repo


def reset(repo: Path) -> None:
    """Back to the committed state: params.yaml, dvc.lock, metrics, and outputs from the cache."""
    run(["git", "checkout", "--", "."], repo)
    run(DVC + ["checkout", "--force"], repo)


def outputs(repo: Path) -> dict[str, str]:
    """SHA-256 of every file under data/, models/, metrics/, plots/, and of dvc.lock."""
    files = [p for top in ("data", "models", "metrics", "plots") for p in (repo / top).rglob("*")]
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted([*files, repo / "dvc.lock"]) if p.is_file()}


def _edit_params(repo: Path, edit) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _stages_run(log: str) -> list[str]:
    return [line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")]


def _add_typo_section(p: dict) -> None:
    p["evaluat"] = {"alpha": 0.1}


def _misspell_a_model(p: dict) -> None:
    p["models"] = ["simplebl", "semgcm"]


def _negative_lr(p: dict) -> None:
    p["train"]["lr"] = -0.001


def _cuda_without_a_gpu(p: dict) -> None:
    p["train"]["device"] = "cuda"


#: A recording of test subject 5 of the small demo (what the demo stage writes).
TEST_RECORDING = next(f for f, (s, _) in recordings(typed(small_params()).demo).items() if s == 5)


def _example_frame_not_sampled(p: dict) -> None:
    p["evaluate"]["qualitative"].update(file_id=TEST_RECORDING, frame_id=31)


def _real_root_missing(p: dict) -> None:
    p["data"]["real"]["root"] = "data/raw/drive_and_act"


def _demo_without_a_pretraining_view(p: dict) -> None:
    p["demo"]["synthetic"]["views"] = ["OMS_01", "Dashboard"]


def _split_member_typo(p: dict) -> None:
    p["normalize"]["synthetic_splits"]["val"] = ["human_3"]


def _batch_of_one(p: dict) -> None:
    p["train"]["batch_size"] = 1


@pytest.mark.parametrize(("edit", "problem"), [
    (_add_typo_section, "unknown key 'evaluat' (did you mean 'evaluate'?)"),
    (_misspell_a_model, "key 'models' names unknown model 'semgcm' (did you mean 'semgcn'? "
                        "expected one of simplebl, semgcn, graformer, graphmlp, jointformer)"),
    (_negative_lr, "key 'train.lr' must be a number > 0, got -0.001"),
    (_batch_of_one, "key 'train.batch_size' must be an integer >= 2 (batch norm needs two samples "
                    "in a training batch), got 1"),
    # mistakes that only the data or this machine show
    pytest.param(_cuda_without_a_gpu, "key 'train.device' asks for CUDA ('cuda'), which is not "
                 "available on this machine", marks=pytest.mark.skipif(
                     torch.cuda.is_available(), reason="this machine has CUDA")),
    (_example_frame_not_sampled, f"key 'evaluate.qualitative.frame_id' is 31, which is not a frame "
     f"the pipeline samples from {TEST_RECORDING!r} (every 30th, 'data.real.frame_stride', of its "
     "600: 0, 30, ..., 570)"),
    (_real_root_missing, "key 'data.real.root' names data/raw/drive_and_act, which is not a folder "
     "(expected a Drive&Act root containing openpose_3d/vpN/<run>.ids_1.openpose.3d.csv)"),
    (_demo_without_a_pretraining_view, "key 'data.synthetic.views' names view 'Front', which the "
     "demo data set does not have (its views are 'demo.synthetic.views': OMS_01, Dashboard)"),
    (_split_member_typo, "key 'normalize.synthetic_splits.val' names human 'human_3', which is not "
     "in the data (closest: 'human_03'; data/raw/demo/synthetic_cabin has 4 humans: human_01, "
     "human_02, human_03, human_04)"),
])
def test_params_mistake_stops_repro_and_deletes_nothing(repo, edit, problem):
    """Unknown keys, unknown models, bad values, and params that this machine or the data
    contradict (a device, a folder, a frame, a view, a split member) all stop `dvc repro` in the
    first stage, with the project's one-line message, and every output produced before is still
    there."""
    before = outputs(repo)
    _edit_params(repo, edit)
    try:
        proc = run(DVC + ["repro"], repo, check=False)
        log = proc.stdout + proc.stderr
        assert proc.returncode != 0, log
        assert outputs(repo) == before
        assert f"cabinlift check: error: params.yaml: 1 problem: {problem}\n" in log, log
        assert "No such file" not in log and _stages_run(log) == ["check"], log
    finally:
        reset(repo)




def test_changed_precomputed_file_reruns_exactly_the_stages_reading_it(repo, tmp_path):
    """COCO-format keypoints outside the repository: a change to the file keypoints2d reads
    re-runs keypoints2d only, a change to detect's re-runs detect (whose unchanged output then
    leaves keypoints2d alone), and a file that is not there stops the first stage."""
    det_json, kp_json = tmp_path / "detect_coco.json", tmp_path / "keypoints_coco.json"
    coco_keypoints(repo / "data" / "raw" / "demo" / "drive_and_act", det_json)
    shutil.copy(det_json, kp_json)

    def precomputed(p: dict) -> None:
        for stage, path in (("detect", det_json), ("keypoints2d", kp_json)):
            p[stage]["backend"] = "precomputed"
            p[stage]["precomputed"]["results"] = str(path)

    def reformat(path: Path) -> None:  # new bytes, same content
        path.write_text(json.dumps(json.loads(path.read_text()), indent=1))

    def reproduced() -> list[str]:  # the stages that ran, after the check that always runs
        stages = _stages_run(run(DVC + ["repro", "keypoints2d"], repo).stdout)
        return [s for s in stages if s != "check"]

    try:
        _edit_params(repo, precomputed)
        assert reproduced() == ["detect", "keypoints2d"]
        assert reproduced() == []
        reformat(kp_json)
        assert reproduced() == ["keypoints2d"]
        reformat(det_json)
        assert reproduced() == ["detect"]
        before = outputs(repo)
        det_json.unlink()
        proc = run(DVC + ["repro", "keypoints2d"], repo, check=False)
        assert proc.returncode != 0
        assert (f"cabinlift check: error: params.yaml: key 'detect.precomputed.results': "
                f"file {det_json} not found") in proc.stderr
        assert outputs(repo) == before
    finally:
        reset(repo)


def _exp_run(repo: Path, name: str, setting: str) -> dict:
    """`dvc exp run -n name -S setting` in the workspace; the Table 1 it wrote; then back."""
    run(DVC + ["exp", "run", "-n", name, "-S", setting], repo)
    table = json.loads((repo / "metrics" / "table1.json").read_text())
    reset(repo)
    return table


def _section(text: str, first_word: str) -> list[str]:
    """The lines of the block (blank-line separated) whose first line starts with ``first_word``."""
    blocks = [b.splitlines() for b in text.split("\n\n")]
    return next(b for b in blocks if b[0].split()[0] == first_word)


def _row(lines: list[str], init: str) -> list[str]:
    return next(line for line in lines if line.startswith(f"  simplebl {init} ")).split()[2:]


def test_exps_shows_changed_params_and_table1_at_100_columns(repo):
    base = json.loads((repo / "metrics" / "table1.json").read_text())
    exps = {"lr2": ("train.lr=0.002", "  train.lr: 0.001 -> 0.002"),
            "drop25": ("lifters.simplebl.dropout=0.25", "  lifters.simplebl.dropout: 0.5 -> 0.25")}
    tables = {name: _exp_run(repo, name, setting) for name, (setting, _) in exps.items()}
    text = run(["cabinlift", "exps"], repo).stdout
    diff = run(["cabinlift", "exps", "--diff"], repo).stdout
    assert run(["cabinlift", "exps", "-A"], repo).stdout == text  # the repository's one commit
    assert max(len(line) for line in (text + diff).splitlines()) <= WIDTH, text
    baseline = _section(text, run(["git", "branch", "--show-current"], repo).stdout.strip())
    assert baseline[0].endswith("baseline, 2 experiment(s)")
    columns = ("none", "pct50", "subj2")  # no real data first: pre-trained rows only

    def shown(cells: dict, fmt: str, ref: dict | None = None) -> list[str]:
        return [fmt.format(cells[s] - (ref[s] if ref else 0.0)) if s in cells else "-"
                for s in columns]

    for init in ("scratch", "pretrained"):
        assert _row(baseline, init) == shown(base["simplebl"][init], "{:.1f}")
    assert _row(baseline, "pretrained")[0] != "-" and _row(baseline, "scratch")[0] == "-"
    for name, (_, changed) in exps.items():
        lines = _section(text, name)
        assert [line for line in lines if " -> " in line] == [changed], lines
        diffs = _section(diff, name)
        for init in ("scratch", "pretrained"):
            cells = tables[name]["simplebl"][init]
            assert _row(lines, init) == shown(cells, "{:.1f}"), lines
            assert _row(diffs, init) == shown(cells, "{:+.1f}", base["simplebl"][init]), diffs


@pytest.fixture()
def real_params_repo(tmp_path) -> Path:
    """A repository holding this project's params.yaml byte for byte, committed."""
    repo = make_repo(tmp_path / "repo", base_params())
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    _commit_all(repo, "init")
    return repo


def test_exp_run_set_param_changes_one_line_of_params_yaml(real_params_repo):
    """`dvc exp run -S` (then `dvc exp apply`) rewrites params.yaml: in this project's layout
    only the changed line differs. (Only the check stage runs: the rewrite is what is tested.)"""
    repo = real_params_repo
    one_line = ["-  lr: 0.001", "+  lr: 0.002"]

    def diff() -> list[str]:
        out = run(["git", "diff", "-U0", "params.yaml"], repo).stdout
        return [line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]

    run(DVC + ["exp", "run", "-n", "lr2", "-S", "train.lr=0.002", "check"], repo)
    assert diff() == one_line
    run(["git", "checkout", "--", "params.yaml"], repo)
    assert diff() == []
    # apply also tries to check out the outputs of stages this repository never ran: ignored
    run(DVC + ["exp", "apply", "lr2"], repo, check=False)
    assert diff() == one_line
