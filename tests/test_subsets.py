import copy
import itertools

import numpy as np
import pytest

from cabinlift import config
from cabinlift.config import SettingDef
from cabinlift.errors import CabinliftError
from cabinlift.subsets import make_runs, read_subset, write_subsets

PARAMS = config.read_yaml("params.yaml")
# Eight training subjects with unequal frame counts, like the real pool.
SUBJECTS = np.repeat(np.arange(1, 9), [40, 41, 39, 50, 45, 44, 38, 60])


def _write(tmp_path, params=PARAMS):
    counts = write_subsets(SUBJECTS, config.build(params).setting_defs(), 0, 2, tmp_path)
    return counts, {name: read_subset(tmp_path / f"{name}.json") for name in counts}


def test_protocol_counts(tmp_path):
    counts, docs = _write(tmp_path)
    assert list(counts.values()) == [8, 8, 8, 8, 8, 8, 8, 3]  # the demo: subj8 has 3 seeds
    assert sum(counts.values()) == 59
    for name in ("pct5", "pct10", "pct25", "pct50", "subj1"):
        subj = [r["subjects"] for r in docs[name]["runs"]]
        assert subj == [[s] for s in range(1, 9)]  # once per training subject
    for name, k in (("subj2", 2), ("subj4", 4)):
        combos = {tuple(r["subjects"]) for r in docs[name]["runs"]}
        assert len(combos) == 8 and all(len(c) == k for c in combos)
    assert [r["subjects"] for r in docs["subj8"]["runs"]] == [list(range(1, 9))] * 3
    assert len(docs["subj8"]["runs"][0]["indices"]) == len(SUBJECTS)
    # one subset trained with three seeds: the same rows, runs numbered on
    assert [(r["repetition"], r["subset"], r["seed"]) for r in docs["subj8"]["runs"]] == [
        (0, 0, 0), (1, 0, 1), (2, 0, 2)]
    assert docs["subj8"]["runs"][1]["indices"] == docs["subj8"]["runs"][0]["indices"]
    assert [(r["repetition"], r["subset"], r["seed"]) for r in docs["pct5"]["runs"]] == [
        (r, r, 0) for r in range(8)]
    for name, definition in PARAMS["subsets"]["settings"].items():
        assert docs[name]["setting"] == name and docs[name]["definition"] == definition


def test_subsets_are_written_into_a_new_nested_folder(tmp_path):
    out = tmp_path / "data" / "subsets"
    write_subsets(SUBJECTS, {"subj2": SettingDef(subjects=2, fraction=1.0, repetitions=3,
                                                 seeds=2)}, 0, 2, out)
    runs = read_subset(out / "subj2.json")["runs"]
    assert [(r["subset"], r["seed"]) for r in runs] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0),
                                                        (2, 1)]
    assert runs[2]["subjects"] == runs[3]["subjects"] != runs[0]["subjects"]


def test_a_setting_the_pool_cannot_hold_is_named(tmp_path):
    settings = {"subj9": SettingDef(subjects=9, fraction=1.0, repetitions=1, seeds=1)}
    with pytest.raises(CabinliftError, match=r"^subsets\.settings\.subj9: setting needs 9"):
        write_subsets(SUBJECTS, settings, 0, 2, tmp_path)


def test_fraction_sizes_nesting_and_subject_purity(tmp_path):
    _, docs = _write(tmp_path)
    for r in range(8):
        subject = r + 1
        n = int((SUBJECTS == subject).sum())
        prev = set()
        for name, f in (("pct5", 0.05), ("pct10", 0.1), ("pct25", 0.25), ("pct50", 0.5),
                        ("subj1", 1.0)):
            idx = docs[name]["runs"][r]["indices"]
            assert len(idx) == max(2, round(f * n))
            assert set(SUBJECTS[idx]) == {subject}
            assert prev <= set(idx)  # smaller fractions are nested in larger ones
            prev = set(idx)


def test_seeded_and_seed_sensitive():
    d = SettingDef(subjects=1, fraction=0.25, repetitions=8, seeds=1)
    assert make_runs(SUBJECTS, d, 0, 0, 2) == make_runs(SUBJECTS, d, 0, 0, 2)
    assert make_runs(SUBJECTS, d, 0, 0, 2) != make_runs(SUBJECTS, d, 1, 0, 2)
    # combinations of subjects: the same seed and setting draw the same ones; another
    # setting (index) draws from its own stream
    pairs = SettingDef(subjects=2, fraction=1.0, repetitions=8, seeds=1)
    combos = [[r["subjects"] for r in make_runs(SUBJECTS, pairs, 0, i, 2)] for i in (5, 5, 6)]
    assert combos[0] == combos[1] != combos[2]


def test_the_draws_are_pinned():
    """The subjects, combinations and frames a seed draws are part of every result trained on
    them (the committed demo metrics, a researcher's published Table 1): a change of how the
    generators are seeded (per subject; per setting, offset from the subjects' streams) or of
    what they draw must show here, not as silently different numbers. Values as drawn by numpy
    2.x's PCG64 for seed 0."""
    pairs = make_runs(SUBJECTS, SettingDef(subjects=2, fraction=1.0, repetitions=4, seeds=1), 0, 5, 2)
    assert [r["subjects"] for r in pairs] == [[4, 7], [2, 6], [1, 5], [4, 6]]
    fours = make_runs(SUBJECTS, SettingDef(subjects=4, fraction=1.0, repetitions=3, seeds=1), 0, 6, 2)
    assert [r["subjects"] for r in fours] == [[2, 3, 7, 8], [3, 5, 6, 7], [5, 6, 7, 8]]
    frames = make_runs(SUBJECTS[SUBJECTS <= 2], SettingDef(subjects=1, fraction=0.1,
                                                           repetitions=2, seeds=1), 0, 0, 2)
    assert frames == [
        {"repetition": 0, "subset": 0, "seed": 0, "subjects": [1], "indices": [15, 22, 24, 33]},
        {"repetition": 1, "subset": 1, "seed": 0, "subjects": [2], "indices": [50, 53, 69, 80]}]


def test_subject_combinations_are_drawn_without_replacement():
    # four subjects give six pairs: six repetitions must use each pair exactly once, whatever
    # the seed or setting (drawn with replacement, all six would be distinct in 6!/6**6 = 1.5 %
    # of draws); and no draw of 8 of the 28 pairs of eight subjects repeats a pair
    four = SUBJECTS[SUBJECTS <= 4]
    every_pair = sorted(itertools.combinations(range(1, 5), 2))
    for seed in range(5):
        for index in range(3):
            runs = make_runs(four, SettingDef(subjects=2, fraction=1.0, repetitions=6, seeds=1), seed,
                             index, 2)
            assert sorted(tuple(r["subjects"]) for r in runs) == every_pair
            runs = make_runs(SUBJECTS, SettingDef(subjects=2, fraction=1.0, repetitions=8, seeds=1),
                             seed, index, 2)
            assert len({tuple(r["subjects"]) for r in runs}) == 8


def test_min_frames_is_the_floor_of_a_fraction():
    # subject 1 has 40 frames: 5 % is 2 frames, 25 % is 10; a floor of 5 frames lifts the
    # first to 5 and leaves the second; a floor above the subject's frames cannot be met
    def sizes(fraction, min_frames):
        d = SettingDef(subjects=1, fraction=fraction, repetitions=1, seeds=1)
        return len(make_runs(SUBJECTS, d, 0, 0, min_frames)[0]["indices"])

    assert [sizes(0.05, 2), sizes(0.05, 5), sizes(0.25, 5), sizes(0.05, 40)] == [2, 5, 10, 40]
    with pytest.raises(CabinliftError, match=r"^repetition 0 would train on 40 frame\(s\) "
                                             r"\(subject 1 has 40 in the training split\), fewer "
                                             r"than 'subsets.min_frames' \(41\)"):
        sizes(0.05, 41)
    # the floor keeps the nesting: the 5 frames of 5 % are among the 10 of 25 %
    small, large = (set(make_runs(SUBJECTS, SettingDef(subjects=1, fraction=f, repetitions=1, seeds=1),
                                  0, 0, 5)[0]["indices"]) for f in (0.05, 0.25))
    assert small < large


def test_too_many_subjects_or_repetitions():
    with pytest.raises(CabinliftError, match=r"setting needs 9 training subjects but the "
                                             r"training pool has 8 \(1, 2, 3, 4, 5, 6, 7, 8\)"):
        make_runs(SUBJECTS, SettingDef(subjects=9, fraction=1.0, repetitions=1, seeds=1), 0, 0, 2)
    with pytest.raises(CabinliftError, match="distinct combinations"):
        make_runs(SUBJECTS, SettingDef(subjects=7, fraction=1.0, repetitions=9, seeds=1), 0, 0, 2)


def test_single_subject_runs_never_share_a_subject():
    """Five subjects: five runs use each once (in sorted order); eight runs are refused instead
    of training subjects 1, 5 and 6 twice."""
    five = SUBJECTS[np.isin(SUBJECTS, [1, 5, 6, 7, 8])]
    runs = make_runs(five, SettingDef(subjects=1, fraction=0.05, repetitions=5, seeds=1), 0, 0, 2)
    assert [r["subjects"] for r in runs] == [[1], [5], [6], [7], [8]]
    with pytest.raises(CabinliftError, match=r"8 repetitions of a single-subject setting, but the "
                                             r"training pool has 5 subjects \(1, 5, 6, 7, 8\)"):
        make_runs(five, SettingDef(subjects=1, fraction=0.05, repetitions=8, seeds=1), 0, 0, 2)


def test_zero_fraction_rejected_before_any_output(tmp_path):
    p = copy.deepcopy(PARAMS)
    p["subsets"]["settings"]["pct5"]["fraction"] = 0
    with pytest.raises(CabinliftError, match=r"pct5\.fraction.*\(0, 1\]"):
        config.build(p)


def test_read_subset_errors(tmp_path):
    with pytest.raises(CabinliftError, match="not found"):
        read_subset(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"setting": "pct5", "runs": [{"repetition": 0}]}')
    with pytest.raises(CabinliftError, match=r"runs\[0\].*subset"):
        read_subset(bad)
    bad.write_text('{"setting": "pct5"}')
    with pytest.raises(CabinliftError, match=r"bad\.json: missing key 'runs'"):
        read_subset(bad)
    bad.write_text('{"setting": "pct5",\n "runs": [}')
    with pytest.raises(CabinliftError, match=r"bad\.json: line 2: not valid JSON"):
        read_subset(bad)


def test_a_run_below_the_floor_stops_the_stage_naming_the_subject(tmp_path):
    """A subject with fewer frames than ``min_frames`` (a large ``frame_stride``) would train a
    run on one frame, which fails only in fine-tuning: the stage stops before writing it."""
    subjects = np.array([1, 1, 1, 2, 3, 3])  # subject 2: one sampled frame
    settings = {"subj1": SettingDef(subjects=1, fraction=1.0, repetitions=3, seeds=1)}
    with pytest.raises(CabinliftError) as exc:
        write_subsets(subjects, settings, 0, 2, tmp_path)
    assert str(exc.value) == (
        "subsets.settings.subj1: repetition 1 would train on 1 frame(s) (subject 2 has 1 in the "
        "training split), fewer than 'subsets.min_frames' (2); sample more frames (a smaller "
        "'data.real.frame_stride') or train on other subjects")
    # two subjects together reach the floor
    settings = {"subj2": SettingDef(subjects=2, fraction=1.0, repetitions=3, seeds=1)}
    assert write_subsets(subjects, settings, 0, 2, tmp_path) == {"subj2": 3}
