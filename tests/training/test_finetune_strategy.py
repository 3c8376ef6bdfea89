"""The fine-tuning knobs of params' ``finetune`` section (src/cabinlift/training/finetuning.py):
frozen fine-tuning leaves everything but the output layer bitwise as pre-trained, a mixed batch
holds the stated share of synthetic rows while an epoch still passes over the real rows once,
``finetune.lr`` is the learning rate of pre-trained runs only, and the defaults are the paper's
fine-tuning, keyed as before the knobs existed."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from tinydata import write_processed

from cabinlift import config
from cabinlift.errors import CabinliftError
from cabinlift.lifters import build_lifter
from cabinlift.lifters.losses import masked_mse
from cabinlift.training import recipe as recipe_module
from cabinlift.training.checkpoints import read_checkpoint
from cabinlift.training.data import PoseTensors
from cabinlift.training.engine import build_stack, draw_noise
from cabinlift.training.finetuning import SEQUENTIAL, Strategy, mixed_batches
from cabinlift.training.recipe import Recipe, RunSpec, train_runs
from cabinlift.training.stages import run_finetune_all, run_pretrain_stage
from cabinlift.training.store import RunStore, finetune_keys

RECIPE = Recipe(lr=1e-2, lr_decay=0.96, batch_size=8, grad_clip=1.0, max_epochs=2, val_every=1,
                patience=5, target_unit_mm=50.0)
TINY = {
    "simplebl": {"linear_size": 16, "num_stage": 1, "dropout": 0.5},
    "semgcn": {"hid_dim": 8, "num_layers": 1, "dropout": 0.2},
    "graformer": {"dim_model": 8, "n_layers": 1, "n_head": 2},
    "graphmlp": {"layers": 1, "channel": 8, "d_hid": 16, "token_dim": 8},
    "jointformer": {"d_model": 8, "n_layers": 2, "n_head": 2, "d_k": 4, "d_v": 4, "d_inner": 8},
}
#: Each lifter's output layer at the TINY sizes and its parameters (JointFormer: the last of its
#: two layers' pose heads, LayerNorm and Linear).
OUTPUT_PARAMS = {
    "simplebl": ["head.weight", "head.bias"],
    "semgcn": ["gconv_output.W", "gconv_output.e", "gconv_output.bias"],
    "graformer": ["gconv_output.weight", "gconv_output.bias"],
    "graphmlp": ["head.weight", "head.bias"],
    "jointformer": ["intermediate_pred.1.0.weight", "intermediate_pred.1.0.bias",
                    "intermediate_pred.1.2.weight", "intermediate_pred.1.2.bias"],
}
CPU = torch.device("cpu")
PARAMS = config.read_yaml("params.yaml")


def _split(rng: np.random.Generator, n: int) -> PoseTensors:
    x = rng.normal(size=(n, 13, 2)).astype(np.float32)
    y = (x.reshape(n, 26) @ rng.normal(size=(26, 39))).reshape(n, 13, 3).astype(np.float32)
    return PoseTensors.from_arrays({"x2d": x, "y3d": y * 100, "mask": rng.random((n, 13)) > 0.1},
                                   RECIPE.target_unit_mm, CPU)


@pytest.fixture(scope="module")
def data() -> tuple[PoseTensors, PoseTensors, PoseTensors]:
    """Real training pool (20 rows), validation (10) and synthetic training poses (30)."""
    rng = np.random.default_rng(0)
    return _split(rng, 20), _split(rng, 10), _split(rng, 30)


def _start(model: str) -> dict[str, torch.Tensor]:
    """Stand-in pre-trained weights: another seed's initialisation."""
    torch.manual_seed(99)
    return build_lifter(model, **TINY[model]).state_dict()


# -- frozen ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(TINY))
def test_each_lifter_declares_its_output_layer(model):
    net = build_lifter(model, **TINY[model])
    assert [f"{name}.{p}" for name, m in net.output_modules().items()
            for p, _ in m.named_parameters()] == OUTPUT_PARAMS[model]


@pytest.mark.parametrize("model", sorted(TINY))
def test_frozen_fine_tuning_moves_only_the_output_layer(model, data):
    pool, val, _ = data
    start = _start(model)
    (frozen,), _ = train_runs(model, TINY[model], [RunSpec(3, None, start)], pool, val, RECIPE,
                              progress=False, strategy=Strategy("frozen"))
    out = OUTPUT_PARAMS[model]
    unchanged = [k for k in start if torch.equal(start[k], frozen.best_state[k])]
    # every other tensor of the state dict (batch-norm statistics included) is bitwise the
    # pre-trained one; every output tensor moved
    assert sorted(unchanged) == sorted(k for k in start if k not in out)
    # the same fine-tuning, sequential, moves the rest too
    (seq,), _ = train_runs(model, TINY[model], [RunSpec(3, None, start)], pool, val, RECIPE,
                           progress=False)
    assert any(not torch.equal(start[k], seq.best_state[k]) for k in start if k not in out)


def test_a_frozen_stack_trains_only_the_output_layer_on_inference_features(data):
    """SimpleBL (batch norm and dropout 0.5 before the head, none in it): a frozen stack's
    training loss is the loss of the model in eval mode, whatever its noise."""
    pool, _, _ = data
    start = _start("simplebl")
    stack = build_stack("simplebl", TINY["simplebl"], [3], [start], CPU, "coordinate_mean",
                        output_only=True)
    assert [n for n, p in stack.params.items() if p.requires_grad] == OUTPUT_PARAMS["simplebl"]
    assert [t.data_ptr() for t in stack.trainable] == [
        stack.params[n].data_ptr() for n in OUTPUT_PARAMS["simplebl"]]
    x, y, mask = pool.x[:8], pool.y[:8], pool.mask[:8]
    net = build_lifter("simplebl", **TINY["simplebl"])
    net.load_state_dict(start)
    net.eval()
    with torch.no_grad():
        expected = masked_mse(net(x), y, mask, "coordinate_mean")
    gens = [torch.Generator().manual_seed(1)]
    noise = draw_noise(gens, [0], 1, stack.noise_lanes(8), CPU)
    loss = stack.losses(None, noise, x[None], y[None], mask[None])
    assert torch.allclose(loss[0], expected, rtol=1e-5, atol=0)


# -- mixed -------------------------------------------------------------------------------------


def test_a_mixed_batch_holds_the_stated_share():
    mixed = Strategy("mixed", 0.25)
    assert mixed.synthetic_per_batch(8) == 2 and SEQUENTIAL.synthetic_per_batch(8) == 0
    rows = torch.arange(20)  # real pool rows 0..19; synthetic rows 100..129
    synthetic = torch.arange(100, 130)
    for drop_last, sizes, synth in ((False, [8, 8, 8, 3], [2, 2, 2, 1]),
                                    (True, [8, 8, 8], [2, 2, 2])):
        batches = mixed_batches(rows, torch.Generator().manual_seed(0),
                                torch.Generator().manual_seed(1), synthetic, 8, 2, drop_last)
        assert [len(b) for b in batches] == sizes
        assert [int((b >= 100).sum()) for b in batches] == synth
        real = torch.cat([b[b < 100] for b in batches])
        # 20 real rows in parts of 6: once each (the partial last part of 2 dropped with drop_last)
        assert len(real) == len(set(real.tolist())) == (18 if drop_last else 20)


def _recorded_steps(monkeypatch) -> list[dict[int, torch.Tensor]]:
    """The batches of every optimiser step of train_runs from now on."""
    steps = []
    original = recipe_module.train_step

    def recording(stack, opt, batches, *args, **kwargs):
        steps.append({r: b.clone() for r, b in batches.items()})
        return original(stack, opt, batches, *args, **kwargs)

    monkeypatch.setattr(recipe_module, "train_step", recording)
    return steps


def test_a_mixed_epoch_passes_over_the_real_rows_once(data, monkeypatch):
    pool, val, synthetic = data
    steps = _recorded_steps(monkeypatch)
    (run,), _ = train_runs("simplebl", TINY["simplebl"], [RunSpec(3, None, _start("simplebl"))],
                           pool, val, RECIPE, progress=False,
                           strategy=Strategy("mixed", 0.25), synthetic=synthetic)
    # 20 real rows, 6 per batch: 4 steps an epoch (sequential: 3 of 8)
    assert run.steps == len(steps) == 8
    for epoch in (steps[:4], steps[4:]):
        batches = [s[0] for s in epoch]
        assert [int((b >= 20).sum()) for b in batches] == [2, 2, 2, 1]
        assert sorted(torch.cat([b[b < 20] for b in batches]).tolist()) == list(range(20))
        assert all(int(b.max()) < 50 for b in batches)  # the 30 synthetic rows follow the 20


def test_a_runs_synthetic_rows_do_not_depend_on_its_stack_mates(data, monkeypatch):
    pool, val, synthetic = data
    steps = _recorded_steps(monkeypatch)
    mixed = Strategy("mixed", 0.5)
    a = RunSpec(3, np.arange(12), _start("simplebl"))
    b = RunSpec(4, np.arange(5, 20), _start("simplebl"))
    train_runs("simplebl", TINY["simplebl"], [a], pool, val, RECIPE, progress=False,
               strategy=mixed, synthetic=synthetic)
    alone = [s[0] for s in steps]
    steps.clear()
    train_runs("simplebl", TINY["simplebl"], [b, a], pool, val, RECIPE, progress=False,
               strategy=mixed, synthetic=synthetic)
    stacked = [s[1] for s in steps if 1 in s]
    assert len(alone) == len(stacked) == 6
    assert all(torch.equal(x, y) for x, y in zip(alone, stacked, strict=True))


def test_mixed_fine_tuning_needs_the_synthetic_poses(data):
    pool, val, _ = data
    with pytest.raises(CabinliftError, match="mixed fine-tuning needs the synthetic"):
        train_runs("simplebl", TINY["simplebl"], [RunSpec(3)], pool, val, RECIPE,
                   progress=False, strategy=Strategy("mixed", 0.5), desc="ft")


class Interrupted(Exception):
    """Stands for the process being killed at an epoch boundary."""


@pytest.mark.parametrize("strategy", [Strategy("mixed", 0.25), Strategy("frozen")])
def test_an_interrupted_stack_resumes_as_if_never_interrupted(data, tmp_path, strategy):
    """The snapshot holds each run's generator of synthetic rows (mixed) and the optimiser of
    the output layer alone (frozen)."""
    pool, val, synthetic = data
    recipe = Recipe(**{**RECIPE.__dict__, "max_epochs": 4})
    specs = [RunSpec(3, np.arange(14), _start("simplebl")),
             RunSpec(4, np.arange(6, 20), _start("simplebl"))]

    def train(store=None, stop_at=None):
        def hook(epoch):
            if epoch == stop_at:
                raise Interrupted

        res, _ = train_runs("simplebl", TINY["simplebl"], specs, pool, val, recipe,
                            progress=False, store=store, keys=["a" * 64, "b" * 64],
                            epoch_hook=hook, strategy=strategy, synthetic=synthetic)
        return res

    reference = train()
    store = RunStore(tmp_path, snapshot_every_epochs=1)
    with pytest.raises(Interrupted):
        train(store, stop_at=2)
    assert len(store.snapshots()) == 1
    resumed = train(store)
    for a, b in zip(reference, resumed, strict=True):
        assert (a.steps, a.history) == (b.steps, b.history)
        assert all(torch.equal(v, b.best_state[k]) for k, v in a.best_state.items())


# -- learning rate and defaults ----------------------------------------------------------------


def test_finetune_lr_replaces_train_lr_and_null_keeps_it(data):
    assert Strategy(lr=0.005).recipe(RECIPE) == Recipe(**{**RECIPE.__dict__, "lr": 0.005})
    assert Strategy().recipe(RECIPE) is RECIPE
    pool, val, _ = data
    (run,), _ = train_runs("simplebl", TINY["simplebl"], [RunSpec(3)], pool, val,
                           Strategy(lr=0.005).recipe(RECIPE), progress=False)
    assert [h["lr"] for h in run.history] == [0.005, 0.005 * 0.96]


def test_the_default_is_the_papers_fine_tuning_keyed_as_before():
    strategy = Strategy.from_config(config.build(PARAMS).finetune)
    assert strategy == SEQUENTIAL and strategy.describe() is None
    assert strategy.recipe(RECIPE) is RECIPE
    stage = {"model": "simplebl", "recipe": {"lr": 0.001}}
    runs = [(1, np.arange(3), "abc"), (2, None, "def")]
    # the keys computed before the fine-tuning knobs existed (commit 817507c)
    before = ["c83e2ec2fb094c6cf17cbf0cc02236c7ae32904347c26426c96538754bb2e683",
              "0e155df12394b73894b6b26e071950635494bc3089ab5f44bde682bb088be5d4"]
    assert finetune_keys(stage, "pretrained", runs, strategy.describe()) == before
    for other in (Strategy("frozen"), Strategy("mixed", 0.5), Strategy("mixed", 0.25),
                  Strategy(lr=0.005)):
        assert set(finetune_keys(stage, "pretrained", runs, other.describe())).isdisjoint(before)
    assert Strategy("mixed", 0.25, 0.005).describe() == {
        "strategy": "mixed", "mixed_share": 0.25, "lr": 0.005}


# -- the stage ---------------------------------------------------------------------------------


def _params(**finetune):
    p = copy.deepcopy(PARAMS)
    p["lifters"]["simplebl"].update(linear_size=16, num_stage=1, dropout=0.5)
    p["train"].update(max_epochs=2, val_every=1, device="cpu")
    p["pretrain"]["seeds"] = 1
    p["store"]["dir"] = None
    p["finetune"].update(finetune)
    return p


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Processed arrays (subj1: 8 runs of 40 real frames) and a SimpleBL pre-training."""
    root = tmp_path_factory.mktemp("stage")
    processed = write_processed(root / "processed", PARAMS)
    run_pretrain_stage(config.build(_params()), ["simplebl"], processed, root / "pt", root / "pt",
                       None)
    return processed, root / "pt" / "simplebl"


def _finetune(p, init, processed, out, pretrained=None, store=None):
    return run_finetune_all(config.build(p), "simplebl", init, processed,
                            processed / "subsets", out, pretrained, None, ["subj1"],
                            store)["subj1"]


def test_the_stage_fine_tunes_pretrained_runs_as_params_say(pretrained, tmp_path):
    processed, pt = pretrained
    lr = _finetune(_params(lr=0.005), "pretrained", processed, tmp_path / "lr", pt)
    assert {r["history"][0]["lr"] for r in lr} == {0.005}
    meta = read_checkpoint(tmp_path / "lr" / "subj1" / "run00.pt")["meta"]
    assert meta["finetune"] == {"strategy": "sequential", "lr": 0.005}
    # scratch runs never read the section; pre-trained runs at the defaults record nothing
    scratch = _finetune(_params(lr=0.005), "scratch", processed, tmp_path / "s")
    assert {r["history"][0]["lr"] for r in scratch} == {0.001}
    assert "finetune" not in read_checkpoint(tmp_path / "s" / "subj1" / "run00.pt")["meta"]
    default = _finetune(_params(), "pretrained", processed, tmp_path / "d", pt)
    assert {r["history"][0]["lr"] for r in default} == {0.001}
    assert "finetune" not in read_checkpoint(tmp_path / "d" / "subj1" / "run00.pt")["meta"]
    # mixed: 40 real frames a run, 32 with 32 synthetic rows a batch: 2 steps an epoch, not 1
    mixed = _finetune(_params(strategy="mixed"), "pretrained", processed, tmp_path / "m", pt)
    assert {(r["train_frames"], r["steps"]) for r in mixed} == {(40, 4)}
    assert {(r["train_frames"], r["steps"]) for r in default} == {(40, 2)}


def test_stored_runs_are_reused_only_under_the_same_knobs(pretrained, tmp_path):
    processed, pt = pretrained
    store = RunStore(tmp_path / "store")
    runs = {}
    for name, knobs in (("default", {}), ("frozen", {"strategy": "frozen"}),
                        ("share", {"strategy": "mixed", "mixed_share": 0.25}),
                        ("mixed", {"strategy": "mixed"}), ("lr", {"lr": 0.002}),
                        ("again", {}), ("frozen again", {"strategy": "frozen"})):
        runs[name] = _finetune(_params(**knobs), "pretrained", processed, tmp_path / name, pt,
                               store)
    assert {name: sum(r["reused"] for r in rs) for name, rs in runs.items()} == {
        "default": 0, "frozen": 0, "share": 0, "mixed": 0, "lr": 0, "again": 8,
        "frozen again": 8}
    assert len(store.entries()) == 5 * 8
    strip = [{k: v for k, v in r.items() if k not in ("wall_time_s", "reused")}
             for r in runs["frozen"]]
    assert strip == [{k: v for k, v in r.items() if k not in ("wall_time_s", "reused")}
                     for r in runs["frozen again"]]
    assert json.loads((tmp_path / "again" / "subj1" / "runs.json").read_text()) == json.loads(
        (tmp_path / "default" / "subj1" / "runs.json").read_text())


# -- params ------------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, message", [
    ({"strategy": "joint"},
     "key 'finetune.strategy' must be one of 'sequential', 'mixed', 'frozen', got 'joint'"),
    ({"lr": 0}, "key 'finetune.lr' must be a number > 0 or null (train.lr), got 0"),
    ({"lr": "0.1"}, "key 'finetune.lr' must be a number > 0 or null (train.lr), got '0.1'"),
    ({"mixed_share": 1}, "key 'finetune.mixed_share' must be a number in (0, 1), got 1"),
    ({"mixed_share": 0.0}, "key 'finetune.mixed_share' must be a number in (0, 1), got 0.0"),
    ({"mixed_share": None}, "key 'finetune.mixed_share' must be a number in (0, 1), got None"),
    ({"stratgy": "mixed"}, "unknown key 'finetune.stratgy' (did you mean 'finetune.strategy'?)"),
    ({"strategy": "mixed", "mixed_share": 0.007},
     "key 'finetune.mixed_share' (0.007) gives 0 synthetic rows in a batch of 64 "
     "('train.batch_size'); a mixed batch needs at least one synthetic and one real row"),
    ({"strategy": "mixed", "mixed_share": 0.993},
     "key 'finetune.mixed_share' (0.993) gives 64 synthetic rows in a batch of 64 "
     "('train.batch_size'); a mixed batch needs at least one synthetic and one real row"),
])
def test_bad_finetune_values_are_named(changes, message):
    p = copy.deepcopy(PARAMS)
    p["finetune"].update(changes)
    with pytest.raises(CabinliftError) as info:
        config.build(p)
    assert str(info.value) == f"params.yaml: 1 problem: {message}"


@pytest.mark.parametrize("changes", [
    {"strategy": "mixed", "mixed_share": 0.008},  # 0.512 rows: 1 synthetic row of 64
    {"strategy": "mixed", "mixed_share": 0.992},  # 63.49 rows: 1 real row of 64
    {"strategy": "frozen", "mixed_share": 0.001},  # the share is only read with mixed
    {"lr": 1},
])
def test_legal_finetune_values_are_accepted(changes):
    p = copy.deepcopy(PARAMS)
    p["finetune"].update(changes)
    assert config.problems(p) == []
