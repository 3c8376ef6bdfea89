"""The network variants of the paper authors' code as lifter hyper-parameters: each builds what
that code builds (known parameter counts, graphs, groupings, initialisations), the defaults
still build the official models, and each variant trains the same stacked as alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cabinlift.errors import CabinliftError
from cabinlift.lifters import build_lifter
from cabinlift.lifters.graph import authors_shifted_partitions, coco13_partitions
from cabinlift.training.data import PoseTensors
from cabinlift.training.recipe import Recipe, RunSpec, train_runs, validation_mpjpe

#: The authors' variant of each lifter, as params.yaml ``lifters.<name>`` would select it.
AUTHORS = {
    "simplebl": {"activation": "leaky_relu", "bias_init": "zero"},
    "semgcn": {"graph": "coco17", "non_local": True, "non_local_groups": "authors"},
    "graformer": {"dim_model": 128, "n_layers": 4, "n_head": 4, "dropout": 0.1,
                  "graph": "coco17", "deepcopy_init": True},
    "graphmlp": {"graph_layout": "authors_shifted"},
}
#: The same hyper-parameters spelled out at their default values.
EXPLICIT_DEFAULTS = {
    "simplebl": {"activation": "relu", "bias_init": "default"},
    "semgcn": {"graph": "coco15", "non_local": False, "non_local_groups": "flip_pairs"},
    "graformer": {"graph": "coco15", "deepcopy_init": False},
    "graphmlp": {"graph_layout": "coco13"},
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def seeded(name: str, seed: int = 0, **hparams) -> nn.Module:
    torch.manual_seed(seed)
    return build_lifter(name, **hparams)


# --- defaults ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPLICIT_DEFAULTS))
def test_explicit_defaults_build_the_default_model_draw_for_draw(name: str) -> None:
    plain, explicit = seeded(name), seeded(name, **EXPLICIT_DEFAULTS[name])
    a, b = plain.state_dict(), explicit.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the random stream after construction is where the default construction leaves it
    torch.manual_seed(0)
    build_lifter(name)
    after_plain = torch.rand(4)
    torch.manual_seed(0)
    build_lifter(name, **EXPLICIT_DEFAULTS[name])
    assert torch.equal(torch.rand(4), after_plain)


def test_default_parameter_counts_are_unchanged() -> None:
    assert n_params(build_lifter("simplebl")) == 4_276_263
    assert n_params(build_lifter("semgcn")) == 267_313
    assert n_params(build_lifter("semgcn", non_local=True)) == 434_673
    assert n_params(build_lifter("graformer")) == 653_744
    assert n_params(build_lifter("graphmlp")) == 9_482_780 - 4 * 13 * 13


# --- SimpleBL ------------------------------------------------------------------------------


def test_simplebl_authors_variant_count_activation_and_biases() -> None:
    model = seeded("simplebl", **AUTHORS["simplebl"])
    assert n_params(model) == 4_276_263
    acts = [m for m in model.modules() if isinstance(m, nn.LeakyReLU | nn.ReLU)]
    assert len(acts) == 5  # one after each of the 5 batch norms (stem + 2 stages x 2)
    assert all(type(m) is nn.LeakyReLU and m.negative_slope == 0.01 for m in acts)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 6
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in linears)
    default = seeded("simplebl")
    assert all(m.bias.abs().sum() > 0 for m in default.modules() if isinstance(m, nn.Linear))
    assert not any(isinstance(m, nn.LeakyReLU) for m in default.modules())
    # The weights are the same Kaiming-normal draws as the default model's.
    for (n, p), (n2, p2) in zip(model.named_parameters(), default.named_parameters(), strict=True):
        assert n == n2
        if n.endswith("weight"):
            assert torch.equal(p, p2), n


@pytest.mark.parametrize("activation, expected", [
    ("leaky_relu", [-0.02, 3.0, 2.98]),  # the negative pre-activation -2 passes with slope 0.01
    ("relu", [0.0, 3.0, 3.0]),
])
def test_simplebl_activation_known_answer(activation: str, expected: list[float]) -> None:
    # One joint, width 2, no residual stage: head(act(bn(stem(x)))), worked out by hand.
    model = build_lifter("simplebl", num_joints=1, linear_size=2, num_stage=0, dropout=0.0,
                         activation=activation).eval()
    lin, bn = model.stem[0], model.stem[1]
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        lin.bias.copy_(torch.tensor([-3.0, 1.0]))
        bn.eps = 0.0  # running mean 0, variance 1, weight 1, bias 0: the identity
        model.head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        model.head.bias.zero_()
        out = model(torch.tensor([[[1.0, 2.0]]]))  # stem: (1 - 3, 2 + 1) = (-2, 3)
    assert torch.allclose(out.flatten(), torch.tensor(expected), atol=1e-7)


# --- SemGCN --------------------------------------------------------------------------------


def test_semgcn_authors_variant_count_and_mask() -> None:
    model = build_lifter("semgcn", **AUTHORS["semgcn"])
    assert n_params(model) == 434_713
    mask17 = model.gconv_output.mask
    assert int(mask17.sum()) == 47
    assert mask17[0, 5] and mask17[5, 0] and mask17[0, 6] and mask17[6, 0]
    mask15 = build_lifter("semgcn", non_local=True, non_local_groups="authors").gconv_output.mask
    assert int(mask15.sum()) == 43 and not mask15[0, 5] and not mask15[0, 6]
    assert n_params(build_lifter("semgcn", graph="coco17")) == 267_313 + 10 * 4


def _nonlocal_blocks(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if type(m).__name__ == "_GraphNonLocal"]


@pytest.mark.parametrize("groups, order", [
    ("authors", [1, 3, 0, 2, 4, 5, 6, 7, 9, 8, 10, 11, 12]),
    ("flip_pairs", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0]),
])
def test_semgcn_nonlocal_grouped_order(groups: str, order: list[int]) -> None:
    blocks = _nonlocal_blocks(build_lifter("semgcn", non_local=True, non_local_groups=groups))
    assert len(blocks) == 5
    for blk in blocks:
        assert blk.grouped.tolist() == order and blk.group_size == 2


#: Pooled key/value row of each joint: pairs of the grouped order, the last joint dropped.
_POOLED_ROW = {
    "authors": {1: 0, 3: 0, 0: 1, 2: 1, 4: 2, 5: 2, 6: 3, 7: 3, 9: 4, 8: 4, 10: 5, 11: 5,
                12: None},
    "flip_pairs": {1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 6: 2, 7: 3, 8: 3, 9: 4, 10: 4, 11: 5, 12: 5,
                   0: None},
}


@pytest.mark.parametrize("groups", sorted(_POOLED_ROW))
def test_semgcn_nonlocal_keys_values_pool_the_grouped_pairs(groups: str) -> None:
    torch.manual_seed(0)
    model = build_lifter("semgcn", hid_dim=16, non_local=True, non_local_groups=groups)
    blk = _nonlocal_blocks(model)[0]
    x = torch.randn(13, 3, 16)
    keys, values = blk.keys_values(x)
    assert keys.shape == values.shape == (6, 3, 8)
    for joint, row in _POOLED_ROW[groups].items():
        x2 = x.clone()
        x2[joint] += 10.0 * torch.randn(3, 16)
        k2, v2 = blk.keys_values(x2)
        changed = {r for r in range(6) if not (torch.equal(k2[r], keys[r])
                                               and torch.equal(v2[r], values[r]))}
        assert changed == (set() if row is None else {row}), (joint, changed)


# --- GraFormer -----------------------------------------------------------------------------


def test_graformer_authors_variant_count_and_graph() -> None:
    model = build_lifter("graformer", **AUTHORS["graformer"])
    assert n_params(model) == 926_887
    assert n_params(build_lifter("graformer", **{**AUTHORS["graformer"],
                                                 "deepcopy_init": False})) == 926_887
    # T_1 = L = I - row-normalised (A + I): the nose has 5 entries with coco17, 3 with coco15.
    lap17 = model.cheb[1]
    assert torch.allclose(lap17[0, [1, 2, 5, 6]], torch.full((4,), -1 / 5))
    lap15 = build_lifter("graformer").cheb[1]
    assert lap15[0, 5] == 0 and torch.allclose(lap15[0, [1, 2]], torch.full((2,), -1 / 3))


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("deepcopy_init", [True, False])
def test_graformer_deepcopy_init(deepcopy_init: bool) -> None:
    model = seeded("graformer", n_layers=3, deepcopy_init=deepcopy_init)
    layers = model.atten_layers
    for layer in layers:
        lins = layer.attn.linears
        assert all(_same(lins[0], lin) == deepcopy_init for lin in lins[1:])
        assert len({id(p) for lin in lins for p in lin.parameters()}) == 8  # copies, not shared
    for layer in layers[1:]:
        assert _same(layer.attn, layers[0].attn) == deepcopy_init
        assert _same(layer.ffn.fc1, layers[0].ffn.fc1) == deepcopy_init
        assert _same(layer.ffn.fc2, layers[0].ffn.fc2) == deepcopy_init
        assert layer.ffn.A_hat is not layers[0].ffn.A_hat
    # The Chebyshev blocks are drawn independently either way.
    assert not _same(model.gconv_layers[0], model.gconv_layers[1])


def test_graformer_deepcopy_init_draws_in_the_official_order() -> None:
    """Input ChebConv, one attention Linear, the FFN's fc1 and fc2, each layer's two
    Chebyshev convolutions, output ChebConv: the order of the official constructor."""
    from cabinlift.lifters.graformer import ChebConv

    model = seeded("graformer", seed=3, n_layers=2, deepcopy_init=True)
    torch.manual_seed(3)
    ref_in, ref_attn = ChebConv(2, 96), nn.Linear(96, 96)
    ref_fc1, ref_fc2 = nn.Linear(96, 192), nn.Linear(192, 96)
    ref_cheb = [ChebConv(96, 96) for _ in range(4)]
    ref_out = ChebConv(96, 3)
    assert _same(model.gconv_input, ref_in) and _same(model.gconv_output, ref_out)
    for i, layer in enumerate(model.atten_layers):
        assert all(_same(lin, ref_attn) for lin in layer.attn.linears)
        assert _same(layer.ffn.fc1, ref_fc1) and _same(layer.ffn.fc2, ref_fc2)
        assert _same(model.gconv_layers[i].gconv1, ref_cheb[2 * i])
        assert _same(model.gconv_layers[i].gconv2, ref_cheb[2 * i + 1])


# --- GraphMLP ------------------------------------------------------------------------------

#: 1-hop edges of the authors' shifted layout that land in a partition, and its left/right pairs.
SHIFTED_EDGES = {(0, 1), (0, 2), (0, 12), (1, 3), (1, 12), (2, 3), (4, 5), (4, 6), (4, 10),
                 (5, 7), (5, 11), (5, 12), (6, 7), (6, 8), (7, 9), (8, 9), (10, 11)}
SHIFTED_SYM = {(2, 3), (0, 1), (4, 5), (6, 7), (8, 9), (10, 11)}
SHIFTED_DIST = (0, 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 2, 2)


def _pairs(m: torch.Tensor) -> set[tuple[int, int]]:
    return {(min(i, j), max(i, j)) for i, j in (m != 0).nonzero().tolist() if i != j}


def test_graphmlp_authors_shifted_partitions() -> None:
    parts = authors_shifted_partitions()
    assert [int((p != 0).sum()) for p in parts] == [13, 11, 11, 12]
    assert [int((p != 0).sum()) for p in coco13_partitions()] == [13, 12, 12, 12]
    root, centripetal, centrifugal, sym = parts
    assert _pairs(parts.sum(0)) == SHIFTED_EDGES
    assert _pairs(sym) == SHIFTED_SYM
    for j, i in (centripetal != 0).nonzero().tolist():
        assert SHIFTED_DIST[j] > SHIFTED_DIST[i]
    for j, i in (centrifugal != 0).nonzero().tolist():
        assert SHIFTED_DIST[j] < SHIFTED_DIST[i]
    # Root = 1 / column degree with self-loops, by hand from the shifted 1-hop graph; left
    # ear-right hip (4, 12) is in that graph (degree 5 for joints 4 and 12) though, at equal
    # distance from the nose, it lands in no partition.
    degree = [4, 4, 3, 3, 5, 5, 4, 4, 3, 3, 3, 3, 5]
    assert torch.allclose(root.diagonal(), 1.0 / torch.tensor(degree, dtype=torch.float32))


def test_graphmlp_authors_shifted_model() -> None:
    model = build_lifter("graphmlp", **AUTHORS["graphmlp"])
    assert torch.equal(model.A, authors_shifted_partitions())
    assert n_params(model) == 9_482_104
    assert n_params(model) + model.A.numel() == 9_482_780  # as the authors' code counts
    with pytest.raises(CabinliftError, match="authors_shifted"):
        build_lifter("graphmlp", graph_layout="authors_shifted", edges=[(0, 1)])


# --- all variants --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(AUTHORS))
def test_authors_variant_forward_and_loss(name: str) -> None:
    torch.manual_seed(0)
    model = build_lifter(name, **AUTHORS[name]).train()
    x = torch.randn(5, 13, 2)
    y = torch.randn(5, 13, 3)
    loss = model.training_loss(x, y, torch.ones(5, 13, dtype=torch.bool))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.eval()(x).shape == (5, 13, 3)


@pytest.mark.parametrize("name, hparams, error", [
    ("semgcn", {"graph": "coco16"}, "unknown graph 'coco16'"),
    ("semgcn", {"graph": "coco17", "edges": [(0, 1)]}, "exclude each other"),
    ("graformer", {"graph": "coco17", "num_joints": 16}, "COCO-13 graph"),
    ("semgcn", {"non_local_groups": "pairs"}, "non_local_groups 'pairs'"),
    ("simplebl", {"activation": "gelu"}, "activation 'gelu'"),
    ("simplebl", {"bias_init": "zeros"}, "bias_init 'zeros'"),
    ("graphmlp", {"graph_layout": "shifted"}, "graph_layout 'shifted'"),
])
def test_bad_variant_values_are_clear_errors(name: str, hparams: dict, error: str) -> None:
    with pytest.raises(CabinliftError, match=error):
        build_lifter(name, **hparams)


# --- the stacked training engine -----------------------------------------------------------

RECIPE = Recipe(lr=2e-3, lr_decay=0.96, batch_size=16, grad_clip=1.0, max_epochs=3,
                val_every=1, patience=2, target_unit_mm=50.0)
#: Small widths with each authors' option switched on.
TINY_AUTHORS = {
    "simplebl": {"linear_size": 64, "num_stage": 1, **AUTHORS["simplebl"]},
    "semgcn": {"hid_dim": 32, "num_layers": 2, **AUTHORS["semgcn"]},
    "graformer": {"dim_model": 32, "n_layers": 2, "n_head": 4, "graph": "coco17",
                  "deepcopy_init": True},
    "graphmlp": {"layers": 2, "channel": 32, "d_hid": 64, "token_dim": 16,
                 **AUTHORS["graphmlp"]},
}


def _split(rng: np.random.Generator, n: int) -> PoseTensors:
    x = rng.normal(size=(n, 13, 2)).astype(np.float32)
    y = (x.reshape(n, 26) @ rng.normal(size=(26, 39))).reshape(n, 13, 3).astype(np.float32)
    arrays = {"x2d": x, "y3d": y * 100, "mask": rng.random((n, 13)) > 0.1}
    return PoseTensors.from_arrays(arrays, RECIPE.target_unit_mm, torch.device("cpu"))


@pytest.mark.parametrize("name", sorted(TINY_AUTHORS))
def test_authors_variant_trains_the_same_stacked_as_alone(name: str) -> None:
    rng = np.random.default_rng(0)
    pool, val, test = _split(rng, 120), _split(rng, 30), _split(rng, 30)
    specs = [RunSpec(21 + r, np.sort(rng.choice(120, size=n, replace=False)))
             for r, n in enumerate((47, 33))]
    together, stack = train_runs(name, TINY_AUTHORS[name], specs, pool, val, RECIPE)
    test_together = validation_mpjpe(stack, test, RECIPE)
    for r, spec in enumerate(specs):
        (alone,), single = train_runs(name, TINY_AUTHORS[name], [spec], pool, val, RECIPE)
        assert together[r].epochs_run == alone.epochs_run
        assert together[r].best_epoch == alone.best_epoch
        assert abs(test_together[r] - validation_mpjpe(single, test, RECIPE)[0]) < 0.1
