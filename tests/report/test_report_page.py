"""The report's page (src/cabinlift/report/page.py, compare.py, figures.py, stage.py): known
answers on small made-up inputs, and the page of the committed demo results read as text (the
browser's view of it: tests/report/test_report_browser.py)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from cabinlift.config import build
from cabinlift.errors import CabinliftError
from cabinlift.report import compare, figures, page
from cabinlift.report.stage import run_report

ROOT = Path(__file__).resolve().parents[2]


def test_markdown_keeps_the_marks_and_names_the_first_table():
    html = page.render_markdown("# Table 1\n\n## Means\n\n| Model | 5% |\n|---|---:|\n"
                                "| A | **55.4** |\n| B | <u>50.1</u>† |\n\n| x |\n|---|\n| y |\n")
    assert "Table 1" not in html  # the section has the title
    assert "<h3>Means</h3>" in html
    assert html.count("<table") == 2 and html.count('id="table1"') == 1
    assert html.index('id="table1"') < html.index("<strong>55.4</strong>")
    assert "<u>50.1</u>†" in html and 'style="text-align:right"' in html


def test_our_table_beside_the_papers():
    ours = {"semgcn": {"scratch": {"pct5": 100.0, "subj8": 50.0},
                       "pretrained": {"none": 80.0, "pct5": 90.0}},
            "mean_pose": {"pct5": 98.0}}
    paper = {"semgcn": {"scratch": {"pct5": 110.0, "subj8": 48.5},
                        "pretrained": {"pct5": 85.0}},
             "graformer": {"scratch": {"pct5": 90.0}}}
    got = compare.compare_tables(ours, paper)
    assert got.models == ["semgcn", "graformer"]
    assert got.settings == ["none", "pct5", "subj8"]
    assert got.cells["semgcn", "scratch", "pct5"].diff == -10.0
    assert got.cells["semgcn", "scratch", "subj8"].diff == 1.5
    assert got.cells["semgcn", "pretrained", "pct5"].diff == 5.0
    none = got.cells["semgcn", "pretrained", "none"]
    assert (none.ours, none.paper, none.diff) == (80.0, None, None)
    assert got.cells["graformer", "scratch", "pct5"].ours is None
    assert ("graformer", "pretrained", "pct5") not in got.cells
    assert got.mean_abs_diff() == (5.5, 3)
    html = page.comparison_section(got, {"semgcn": "SemGCN"}, {"none": "No real data"})
    assert "PT SemGCN" in html and '<span class="neg">-10.0</span>' in html
    assert '<span class="pos">+5.0</span>' in html and "<strong>5.5 mm</strong>" in html


def test_per_joint_tables_bold_the_lowest_and_open_the_most_data():
    cell = {"per_joint": {"nose": 10.0, "neck": 30.0}}
    summary = {"settings": {"pct5": {"label": "5%"}, "subj8": {"label": "Eight"}},
               "cells": {"a": {"scratch": {"pct5": cell, "subj8": {"per_joint": {"nose": 5.0}}},
                               "pretrained": {"pct5": {"per_joint": {"nose": 12.0,
                                                                     "neck": 20.0}}}}}}
    html = page.grid_tables(summary, "per_joint", "Joint", {"a": "A"})
    assert html.count("<details") == 2 and "<details open><summary>Eight</summary>" in html
    five = html[html.index("<summary>5%"):html.index("<summary>Eight")]
    assert "<th class=\"num\">A</th><th class=\"num\">PT A</th>" in five
    assert re.search(r"nose</td><td class=\"num\"><strong>10\.0</strong></td>"
                     r"<td class=\"num\">12\.0</td>", five)
    assert re.search(r"neck</td><td class=\"num\">30\.0</td>"
                     r"<td class=\"num\"><strong>20\.0</strong>", five)


def test_ticks_and_the_convergence_svg():
    assert figures.nice_ticks(0, 4) == [0, 1, 2, 3, 4]
    assert figures.nice_ticks(103.2, 178.9) == [100, 120, 140, 160, 180]
    curves = figures.pretrain_curves({"a": {"seeds": [
        {"history": [{"epoch": 5, "val_mpjpe": 100.0}, {"epoch": 10, "val_mpjpe": 80.0}]},
        {"history": [{"epoch": 5, "val_mpjpe": 110.0}, {"epoch": 10, "val_mpjpe": 90.0}]}]},
        "b": {"seeds": [{"history": [{"epoch": 10, "val_mpjpe": 95.0}]}]}})
    assert curves == {"a": [(5, 105.0), (10, 85.0)], "b": [(10, 95.0)]}
    svg = figures.convergence_svg(curves, {"a": "A"}, "t")
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3 + 2  # + the legend
    assert "A: epoch 10, 85.0 mm" in svg and ">b</text>" in svg
    assert svg == figures.convergence_svg(curves, {"a": "A"}, "t")
    assert figures.convergence_svg({"a": []}, {}, "t") == ""
    assert figures.data_uri(b"\x89PNG") == "data:image/png;base64,iVBORw=="


def _git(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _write(project: Path, params: dict, out: Path) -> str:
    run_report(build(params, "params.yaml"), ROOT / "metrics", ROOT / "plots",
               ROOT / "references" / "paper_table1.json", ROOT / "profiles",
               ROOT / "data" / "inputs" / "numerics.json", project / "logs", out, project)
    return out.read_text()


def test_the_demo_page_is_self_contained_and_states_its_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    project = tmp_path / "project"
    project.mkdir()
    _git(["init", "-q"], project)
    (project / "a.txt").write_text("a\n")
    _git(["add", "a.txt"], project)
    _git(["commit", "-qm", "a"], project)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    out = tmp_path / "out" / "report.html"
    html = _write(project, params, out)
    # nothing to fetch: no script, no linked file, no address outside the page
    assert not re.search(r"<script|<link|<iframe|@import|https?:", html)
    assert [m[:22] for m in re.findall(r'src="([^"]*)"', html)] == ["data:image/png;base64,"] * 6
    assert 'id="table1"' in html and "<u>55.4</u>" in html and "238.8†" in html
    assert '<section id="paper">' in html and "<svg" in html
    assert "vp11/run1_2018-05-18-11-09-18.ids_1" in html  # the qualitative frame's facts
    assert 'badge clean">clean tree</span>' in html and 'badge clean">clean</span>' in html
    assert 'badge dirty' not in html
    assert "params.yaml holds every value of profile demo" in html
    assert "Wall times: not recorded" in html
    (project / "a.txt").write_text("changed\n")
    params["train"]["max_epochs"] = 7
    html = _write(project, params, out)
    assert 'badge dirty">dirty tree</span>' in html and "<pre> M a.txt</pre>" in html
    assert "<tr><td><code>train.max_epochs</code></td><td>7</td><td>4</td></tr>" in html


def test_a_missing_input_is_one_line_naming_it(tmp_path):
    params = build(yaml.safe_load((ROOT / "params.yaml").read_text()), "params.yaml")
    with pytest.raises(CabinliftError, match=r"summary\.json: not found; expected the "
                       r"evaluation summary \(run the evaluate stage first\)"):
        run_report(params, tmp_path, ROOT / "plots", None, ROOT / "profiles",
                   tmp_path / "numerics.json", tmp_path, tmp_path / "r.html", tmp_path)
