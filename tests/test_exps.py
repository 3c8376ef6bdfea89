"""`cabinlift exps` on records in the shape `dvc exp show --json` writes (DVC 3): the full demo
grid and long paths stay within the line width; `-A` through the real DVC in a small repository
of a few commits. (On the real pipeline: test_dvc_workflow.py.)"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from dvcrepo import DVC, init_repo, run

from cabinlift import cli
from cabinlift.exps import render

MODELS = ("simplebl", "semgcn", "graformer", "graphmlp", "jointformer")
INITS = ("scratch", "pretrained")


def _table(settings: list[str], offset: float) -> dict:
    return {m: {i: {s: 100.0 + 10 * a + b + offset for b, s in enumerate(settings)}
                for a, i in enumerate(INITS)} for m in MODELS}


def _rev(rev: str, name: str | None, params: dict, table: dict) -> dict:
    return {"rev": rev, "name": name, "error": None,
            "data": {"rev": rev, "timestamp": "2026-11-30T05:49:23", "meta": {},
                     "params": {"params.yaml": {"data": params}},
                     "metrics": {"metrics/table1.json": {"data": table}}, "deps": {}, "outs": {}}}


def _show(settings: list[str]) -> list[dict]:
    base = {"train": {"lr": 0.001}, "data": {"real": {"root": "data/raw/demo/drive_and_act"}}}
    exp = {"train": {"lr": 0.002}, "data": {"real": {"root": "/mnt/" + "long-folder/" * 12}}}
    head = _rev("a" * 40, "main", base, _table(settings, 0.0))
    head["experiments"] = [{"executor": None, "name": "paper",
                            "revs": [_rev("b" * 40, "paper", exp, _table(settings, -1.25))]}]
    workspace = _rev("workspace", None, exp, _table(settings, 0.4))
    return [workspace, head]


def _rows(lines: list[str], label: str) -> list[list[str]]:
    """The cells of every table row labelled ``label`` (one per block of columns)."""
    return [line[len(label) + 2:].split() for line in lines if line.startswith(f"  {label}  ")]


def test_demo_grid_fits_in_100_columns():
    settings = ["pct5", "pct10", "pct25", "pct50", "subj1", "subj2", "subj4", "subj8"]
    lines = render(_show(settings), width=100).splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[0] == "main aaaaaaa (2026-11-30 05:49): baseline, 1 experiment(s)"
    start = lines.index("paper bbbbbbb (2026-11-30 05:49), from main")
    base, exp = lines[:start], lines[start:]
    assert [line.split() for line in base if line.startswith(" " * 10)] == [settings]
    assert _rows(base, "jointformer pretrained") == [
        ["110.0", "111.0", "112.0", "113.0", "114.0", "115.0", "116.0", "117.0"]]
    assert exp[1] == "  train.lr: 0.001 -> 0.002"
    assert exp[2].startswith("  data.real.root: data/raw/demo/drive_and_act -> /mnt/long-folder/")
    assert "..." in exp[2] and exp[2].endswith("long-folder/")
    assert _rows(exp, "simplebl scratch") == [  # 100.0 + b - 1.25, rounded
        ["98.8", "99.8", "100.8", "101.8", "102.8", "103.8", "104.8", "105.8"]]
    assert not any("workspace" in line or "100.4" in line for line in lines)  # not listed


def test_cells_as_differences_and_wide_tables_in_blocks():
    settings = [f"s{i:02d}" for i in range(12)]
    lines = render(_show(settings), width=60, diff=True).splitlines()
    assert max(map(len, lines)) <= 60
    start = lines.index("paper bbbbbbb (2026-11-30 05:49), from main")
    headers = [line.split() for line in lines[start:] if line.startswith(" " * 10)]
    assert sum(headers, []) == settings and max(map(len, headers)) == (60 - 24) // 6  # "-1.2" + 2
    assert sum(_rows(lines[start:], "semgcn pretrained"), []) == ["-1.2"] * 12  # 98.75 - 100


def test_no_real_data_column_first_and_mean_pose_row():
    """table1.json as evaluate writes it: pre-trained rows start with ``none`` (no real data)
    and a flat top-level ``mean_pose`` row; both shown, and diffed against the baseline's."""
    settings = ["pct5", "subj1"]
    base_table = _table(settings, 0.0)
    for inits in base_table.values():
        inits["pretrained"] = {"none": 90.0, **inits["pretrained"]}
    base_table["mean_pose"] = {"pct5": 105.6, "subj1": 104.0}
    exp_table = json.loads(json.dumps(base_table))
    exp_table["mean_pose"]["pct5"] = 100.1
    exp_table["semgcn"]["pretrained"]["none"] = 88.5
    show = _show(settings)
    show[1]["data"]["metrics"]["metrics/table1.json"]["data"] = base_table
    show[1]["experiments"][0]["revs"][0]["data"]["metrics"]["metrics/table1.json"]["data"] = exp_table
    lines = render(show, width=100).splitlines()
    assert [line.split() for line in lines if line.startswith(" " * 10)][0] == ["none", *settings]
    assert _rows(lines, "mean_pose")[0] == ["-", "105.6", "104.0"]
    assert _rows(lines, "simplebl scratch")[0] == ["-", "100.0", "101.0"]
    assert _rows(lines, "simplebl pretrained")[0] == ["90.0", "110.0", "111.0"]
    diff = render(show, width=100, diff=True).splitlines()
    start = diff.index("paper bbbbbbb (2026-11-30 05:49), from main")
    assert _rows(diff[start:], "mean_pose") == [["-", "-5.5", "+0.0"]]
    assert _rows(diff[start:], "semgcn pretrained") == [["-1.5", "+0.0", "+0.0"]]


_TABLE_STAGE = """\
import json, yaml
lr = yaml.safe_load(open("params.yaml"))["train"]["lr"]
json.dump({"simplebl": {"scratch": {"pct50": 1000 * lr}}}, open("metrics/table1.json", "w"))
"""


def _commits_repo(repo: Path, commits: int) -> list[str]:
    """A git + DVC repository of ``commits`` commits whose one stage writes a Table 1 from
    ``train.lr``; the commits' short revs, oldest first."""
    repo.mkdir()
    (repo / "metrics").mkdir()
    (repo / "params.yaml").write_text("train:\n  lr: 0.001\n")
    (repo / "table.py").write_text(_TABLE_STAGE)
    (repo / "dvc.yaml").write_text(textwrap.dedent("""\
        stages:
          table:
            cmd: python table.py
            deps: [table.py]
            params: [train.lr]
            metrics:
              - metrics/table1.json:
                  cache: false
        """))
    init_repo(repo, "main")
    run(DVC + ["repro", "-q"], repo)
    for i in range(commits):
        (repo / "notes.txt").write_text(f"commit {i}\n")
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-qm", f"commit {i}"], repo)
    revs = run(["git", "rev-list", "--reverse", "HEAD"], repo).stdout.split()
    return [rev[:7] for rev in revs]


def _exp_run(repo: Path, rev: str, name: str, lr: float) -> None:
    """The experiment ``name`` (``train.lr=lr``) of commit ``rev``; the workspace left as it was."""
    run(["git", "checkout", "-q", rev], repo)
    run(DVC + ["exp", "run", "-q", "-n", name, "-S", f"train.lr={lr}"], repo)
    run(["git", "checkout", "-q", "--", "."], repo)
    run(["git", "checkout", "-q", "main"], repo)


def test_all_commits_shows_only_the_commits_with_experiments(tmp_path, capsys, monkeypatch):
    """`exps -A` once printed a baseline and its Table 1 for every commit (1,738 lines for 123
    commits): only commits with experiments are printed, the others are counted, and with
    several commits the last line says how to see one alone."""
    repo = tmp_path / "repo"
    first, middle, head = _commits_repo(repo, 3)
    monkeypatch.chdir(repo)

    def exps(*args: str) -> list[str]:
        assert cli.main(["exps", *args]) == 0
        return capsys.readouterr().out.splitlines()

    assert exps("-A") == ["no experiments in any of the 3 commit(s); one commit's Table 1: "
                          "cabinlift exps --rev <commit>"]
    _exp_run(repo, head, "lr2", 0.002)
    _exp_run(repo, first, "lr5", 0.005)
    lines = exps("-A")
    baselines = [line.split(" (")[0] for line in lines if "baseline" in line]
    assert baselines == [f"main {head}", first]
    assert not any(middle in line for line in lines)  # no experiments: not shown
    assert [line for line in lines if " -> " in line] == ["  train.lr: 0.001 -> 0.002",
                                                          "  train.lr: 0.001 -> 0.005"]
    assert lines[-2:] == ["experiments in 2 of 3 commits; 1 without experiments not shown",
                          f"one commit alone: cabinlift exps --rev <commit> (e.g. {head})"]
    alone = exps("--rev", first)
    assert alone[0].startswith(f"{first} (") and alone[0].endswith("baseline, 1 experiment(s)")
    assert [line for line in alone if " -> " in line] == ["  train.lr: 0.001 -> 0.005"]
    assert not any(head in line for line in alone)
