"""Reading JSON (cabinlift.jsonfiles) and the messages of the places that read it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import parse_json, read_json

INVALID = '{"a": 1,\n  "b": }'  # line 2, column 8: a value is missing
NOT_UTF8 = b'{"a": "\xff"}'  # byte 7


def _file(tmp_path: Path, content: str | bytes | None, name: str = "f.json") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    return path


def test_read_json_reads_utf8_with_or_without_byte_order_mark(tmp_path: Path) -> None:
    assert read_json(_file(tmp_path, '{"x": [1, 2.5, "é"]}')) == {"x": [1, 2.5, "é"]}
    assert read_json(_file(tmp_path, b'\xef\xbb\xbf[1]', "bom.json")) == [1]


@pytest.mark.parametrize("content, message", [
    (None, "{p}: file not found"),
    (INVALID, "{p}: invalid JSON at line 2, column 8: Expecting value"),
    ("", "{p}: invalid JSON at line 1, column 1: Expecting value"),
    (NOT_UTF8, "{p}: not UTF-8 text (invalid start byte)"),
])
def test_read_json_default_messages(tmp_path: Path, content, message: str) -> None:
    path = _file(tmp_path, content)
    with pytest.raises(CabinliftError) as err:
        read_json(path)
    assert str(err.value) == message.format(p=path)


def test_a_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(CabinliftError, match=r"d\.json: file not found$"):
        read_json((tmp_path / "d.json").mkdir() or tmp_path / "d.json")


def test_messages_are_the_callers_templates(tmp_path: Path) -> None:
    path = _file(tmp_path, INVALID)
    with pytest.raises(CabinliftError) as err:
        read_json(path, invalid="{path}: line {line}: not valid JSON: {msg}")
    assert str(err.value) == f"{path}: line 2: not valid JSON: Expecting value"
    with pytest.raises(CabinliftError) as err:
        read_json(path, invalid="{path}: not valid JSON ({error})")
    assert str(err.value) == f"{path}: not valid JSON (Expecting value: line 2 column 8 (char 16))"
    with pytest.raises(CabinliftError) as err:
        read_json(tmp_path / "nope.json", missing="{path}: expected the list of runs ({error})")
    assert str(err.value) == (f"{tmp_path / 'nope.json'}: expected the list of runs ([Errno 2] "
                              f"No such file or directory: '{tmp_path / 'nope.json'}')")
    with pytest.raises(CabinliftError) as err:
        read_json(_file(tmp_path, NOT_UTF8, "b.json"), not_utf8="{path}: bytes ({error})")
    assert str(err.value) == (f"{tmp_path / 'b.json'}: bytes ('utf-8' codec can't decode byte "
                              "0xff in position 7: invalid start byte)")


def test_a_file_that_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(CabinliftError) as err:
        read_json(tmp_path / "f.json")
    assert str(err.value) == (f"{tmp_path / 'f.json'}: cannot be read ([Errno 13] Permission "
                              f"denied: '{tmp_path / 'f.json'}')")


def test_parse_json_names_where_the_text_came_from() -> None:
    assert parse_json(b"[true, null]", "x") == [True, None]
    with pytest.raises(CabinliftError, match=r"^cmd: invalid JSON at line 1, column 2: "):
        parse_json("[", "cmd")


# ------------------------------------------------------------------ the callers' own messages


def test_runs_json_and_pretraining_summary_that_are_not_json(tmp_path: Path) -> None:
    from cabinlift.evaluation.loading import load_pretrain_summaries, load_setting_runs

    d = tmp_path / "pretrained" / "m" / "s"
    d.mkdir(parents=True)
    with pytest.raises(CabinliftError) as err:
        load_setting_runs(tmp_path, "m", "pretrained", "s", 10)
    assert str(err.value) == f"{d / 'runs.json'}: file not found (expected the list of runs)"
    _file(d, INVALID, "runs.json")
    with pytest.raises(CabinliftError) as err:
        load_setting_runs(tmp_path, "m", "pretrained", "s", 10)
    assert str(err.value) == (f"{d / 'runs.json'}: not valid JSON (Expecting value: line 2 "
                              "column 8 (char 16))")
    _file(tmp_path, NOT_UTF8, "m.json")
    with pytest.raises(CabinliftError) as err:
        load_pretrain_summaries(tmp_path, ["m"])
    assert str(err.value) == (f"{tmp_path / 'm.json'}: not valid JSON ('utf-8' codec can't "
                              "decode byte 0xff in position 7: invalid start byte)")
    assert load_pretrain_summaries(tmp_path, ["other"]) == {}  # optional


def test_wall_times_that_are_not_a_list_of_rows(tmp_path: Path) -> None:
    from cabinlift.evaluation.loading import load_timings

    d = tmp_path / "scratch" / "m"
    d.mkdir(parents=True)
    assert load_timings(tmp_path, "m", "scratch", "s") == {}  # no log: no times
    _file(d, '[{"repetition": 1, "wall_time_s": 2.5}]', "s.json")
    assert load_timings(tmp_path, "m", "scratch", "s") == {1: 2.5}
    expected = "{p}: expected a JSON list of {{repetition, wall_time_s}} ({why})"
    for content, why in ((INVALID, "Expecting value: line 2 column 8 (char 16)"),
                         ('[{"repetition": 1}]', "'wall_time_s'")):
        _file(d, content, "s.json")
        with pytest.raises(CabinliftError) as err:
            load_timings(tmp_path, "m", "scratch", "s")
        assert str(err.value) == expected.format(p=d / "s.json", why=why)


def test_verify_reads_results_as_json(tmp_path: Path) -> None:
    from cabinlift.verify import _read_json

    with pytest.raises(CabinliftError) as err:
        _read_json(_file(tmp_path, INVALID))
    assert str(err.value) == (f"{tmp_path / 'f.json'}: cannot be read as JSON (Expecting value: "
                              "line 2 column 8 (char 16))")
    with pytest.raises(CabinliftError) as err:
        _read_json(tmp_path / "gone.json")
    assert str(err.value) == (f"{tmp_path / 'gone.json'}: cannot be read as JSON ([Errno 2] No "
                              f"such file or directory: '{tmp_path / 'gone.json'}')")


def test_dvc_exp_show_output_that_is_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from cabinlift import exps

    def fake_run(*args, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(args, 0, stdout="Warning\n[]", stderr="")

    monkeypatch.setattr(exps.subprocess, "run", fake_run)
    with pytest.raises(CabinliftError) as err:
        exps.run_dvc_exp_show([])
    assert str(err.value) == "dvc exp show --json: not JSON (Expecting value)"
