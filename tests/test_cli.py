"""Malformed input stops a stage with one line naming what and where, exit status 1."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from cliutil import one_line_error, typed, write_params

from cabinlift import cli, config
from cabinlift.demo.generate import generate

PARAMS = config.read_yaml("params.yaml")


def _params(tmp_path: Path, **changes) -> Path:
    return write_params(tmp_path / "params.yaml", copy.deepcopy(PARAMS), **changes)


_one_line_error = one_line_error


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    demo = typed(PARAMS, **{"demo.real.seconds_per_run": 20, "demo.real.subjects": 2,
                            "demo.synthetic.humans": 2, "demo.synthetic.poses_per_human": 2}).demo
    generate(root, demo, workers=1)
    return root


def test_unknown_model(tmp_path, capsys):
    params = _params(tmp_path, models=["simplebl", "megalifter"])
    err = _one_line_error(capsys, ["--params", str(params), "pretrain", "--model", "megalifter"])
    assert "'models'" in err and "megalifter" in err


def test_zero_fraction(tmp_path, capsys):
    params = _params(tmp_path, **{"subsets.settings.pct10.fraction": 0})
    err = _one_line_error(capsys, ["--params", str(params), "subsets", "--processed", str(tmp_path)])
    assert "subsets.settings.pct10.fraction" in err


def test_params_and_timings_after_the_command(tmp_path, capsys):
    """`cabinlift check --params other.yaml` was an argparse error: the options of every
    command are taken before or after its name, the later one winning."""
    params = _params(tmp_path, **{"subsets.settings.pct10.fraction": 0})
    assert cli.main(["subsets", "--processed", str(tmp_path), "--params", str(params)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cabinlift subsets: error: ") and "subsets.settings.pct10.fraction" in err
    parse = cli.build_parser().parse_args
    assert (parse(["check"]).params, parse(["check"]).timings) == ("params.yaml", "logs")
    assert parse(["--params", "a.yaml", "--timings", "t", "check"]).params == "a.yaml"
    assert parse(["--params", "a.yaml", "check", "--timings", "t2"]).timings == "t2"
    assert parse(["--params", "a.yaml", "check", "--params", "b.yaml"]).params == "b.yaml"
    for command in (*cli.COMPUTING, "store", "exps", "profile"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        out = capsys.readouterr().out
        assert "--params PARAMS" in out and "--timings TIMINGS" in out, command


def test_truncated_csv_names_file_and_row(tmp_path, capsys, demo_root):
    csv = sorted((demo_root / "drive_and_act" / "openpose_3d").rglob("*.csv"))[0]
    broken = tmp_path / "real"
    import shutil

    shutil.copytree(demo_root / "drive_and_act", broken)
    target = broken / csv.relative_to(demo_root / "drive_and_act")
    text = target.read_text()
    target.write_text(text[: len(text) - 200])  # cut the last row in half
    params = _params(tmp_path, **{"data.real.root": str(broken)})
    out = tmp_path / "det"
    err = _one_line_error(capsys, ["--params", str(params), "detect", "--out", str(out)])
    assert target.name in err and "line" in err


def test_json_missing_field_names_file_and_key(tmp_path, capsys, demo_root):
    import shutil

    synth = tmp_path / "synth"
    shutil.copytree(demo_root / "synthetic_cabin", synth)
    victim = sorted((synth / "gt_jsons").glob("*Front*.json"))[0]
    doc = json.loads(victim.read_text())
    del doc["humans"][0]["keypoints3D"][5]["z"]
    victim.write_text(json.dumps(doc))
    params = _params(tmp_path, **{"data.synthetic.root": str(synth),
                                  "data.synthetic.workers": 1})
    from cabinlift.errors import CabinliftError
    from cabinlift.normalize import build_synthetic

    with pytest.raises(CabinliftError) as info:
        build_synthetic(config.load_config(params))
    assert victim.name in str(info.value) and "keypoints3D[5].z" in str(info.value)


def _helps() -> dict[str, str]:
    """``cabinlift --help`` and ``cabinlift <command> --help``, as printed."""
    import argparse

    from cabinlift.cli import build_parser

    parser = build_parser()
    helps = {"cabinlift": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps.update({f"cabinlift {name}": sub.format_help()
                          for name, sub in action.choices.items()})
    return helps


def test_help_is_plain_text():
    """Help texts come from docstrings; their reStructuredText markup must not show."""
    helps = _helps()
    assert len(helps) == 20  # the top level and its 19 commands
    for command, text in helps.items():
        for markup in ("``", ":class:`", ":func:`", ":mod:`", ":data:`"):
            assert markup not in text, f"{command} --help shows {markup!r}:\n{text}"
    assert "cabinlift <stage>: thin command-line entry points" in helps["cabinlift"]
