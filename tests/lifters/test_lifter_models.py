"""The five lifters: sizes, contract (shapes, masking, determinism, gradients) and the exact
formulas that the speed rewrites must preserve."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cabinlift.errors import CabinliftError
from cabinlift.lifters import available, build_lifter, lifter_class
from cabinlift.lifters.graph import coco13_partitions, semgcn_mask
from cabinlift.metrics import masked_mse
from cabinlift.skeleton import COCO13_EDGES

MODELS = ["simplebl", "semgcn", "graformer", "graphmlp", "jointformer"]

#: Parameter counts of the official code at 13 joints with its default hyper-parameters.
REFERENCE_PARAMS = {
    "simplebl": 4_276_263,
    "semgcn": 267_313,
    "graformer": 653_744,
    "graphmlp": 9_482_780,
    "jointformer": 1_196_408,
}

#: Parameters that receive no gradient by construction of the official architecture.
NO_GRAD = {"jointformer": {"intermediate_enc.3.weight", "intermediate_enc.3.bias"}}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def batch(b: int = 6, j: int = 13, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, j, 2, generator=g) * 0.3
    y = torch.randn(b, j, 3, generator=g) * 0.3
    mask = torch.rand(b, j, generator=g) > 0.25
    mask[:, 0] = True
    return x, y, mask


def test_all_five_are_registered() -> None:
    assert sorted(available()) == sorted(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_within_one_percent_of_the_official_code(name: str) -> None:
    count = n_params(build_lifter(name))
    ref = REFERENCE_PARAMS[name]
    assert abs(count - ref) <= 0.01 * ref, f"{name}: {count:,} vs official {ref:,}"


def test_exact_parameter_counts() -> None:
    # Exact where the count is the official one; GraphMLP's 676 fewer are its frozen partition
    # matrices (4 x 13 x 13), a Parameter in the official code and a buffer here.
    assert n_params(build_lifter("semgcn")) == 267_313
    assert n_params(build_lifter("semgcn", non_local=True)) == 434_673
    assert n_params(build_lifter("graformer")) == 653_744
    assert n_params(build_lifter("graphmlp")) == 9_482_780 - 4 * 13 * 13
    assert n_params(build_lifter("jointformer")) == 1_196_408


@pytest.mark.parametrize("name", MODELS)
def test_defaults_are_scalar_keyword_hyperparameters(name: str) -> None:
    import inspect
    import typing

    cls = lifter_class(name)
    hints = typing.get_type_hints(cls.__init__)
    for pname, p in inspect.signature(cls.__init__).parameters.items():
        if pname in ("self", "edges", "sym_pairs", "dist_center"):
            continue
        if isinstance(p.default, str):  # a choice: a Literal of strings holding the default
            assert typing.get_origin(hints[pname]) is typing.Literal, f"{name}.{pname}"
            assert p.default in typing.get_args(hints[pname]), f"{name}.{pname}"
            continue
        assert isinstance(p.default, int | float | bool), f"{name}.{pname}"


@pytest.mark.parametrize("name", MODELS)
def test_the_typed_config_holds_the_constructor_s_hyperparameters(name: str) -> None:
    """Each field of a lifter's Config is a keyword argument of its constructor, in order and
    with the same choices; the constructor's other arguments (``num_joints``, a graph for another
    skeleton) are set by the pipeline or by code, never in params.yaml."""
    import dataclasses
    import inspect
    import typing

    cls = lifter_class(name)
    args = [a for a in list(inspect.signature(cls.__init__).parameters)[1:]
            if a not in ("num_joints", "edges", "sym_pairs", "dist_center")]
    fields = [f.name for f in dataclasses.fields(cls.Config)]
    assert fields == args
    hints = typing.get_type_hints(cls.__init__)
    for field, expect in cls.Config.expected().items():
        if typing.get_origin(hints[field]) is typing.Literal:
            assert expect.text == f"one of {', '.join(map(repr, typing.get_args(hints[field])))}"
    defaults = {a: inspect.signature(cls.__init__).parameters[a].default for a in args}
    config = cls.Config(**defaults)  # the official values are valid ones
    torch.manual_seed(0)
    built = cls.from_config(config).state_dict()
    torch.manual_seed(0)
    assert all(torch.equal(v, built[k]) for k, v in build_lifter(name).state_dict().items())


def test_a_config_refuses_what_its_fields_and_rules_refuse() -> None:
    from cabinlift.lifters.graformer import GraFormerConfig

    good = dict(dim_model=16, n_layers=1, n_head=4, dropout=0.1, attn_dropout=0.1,
                gcn_dropout=0.1, cheb_order=2, graph="coco15", deepcopy_init=False)
    assert GraFormerConfig(**good).n_head == 4
    with pytest.raises(CabinliftError, match=r"'n_head' must be an integer >= 1, got 0; "
                                             r"'graph' must be one of 'coco15', 'coco17', got 'x'"):
        GraFormerConfig(**{**good, "n_head": 0, "graph": "x"})
    with pytest.raises(CabinliftError, match=r"'dim_model' \(16\) must be divisible by 'n_head' \(3\)"):
        GraFormerConfig(**{**good, "n_head": 3})
    with pytest.raises(CabinliftError, match=r"'dim_model' \(16\) must be divisible by 'n_head' \(3\)"):
        build_lifter("graformer", dim_model=16, n_head=3)  # the same rule, built from code
    with pytest.raises(TypeError):
        GraFormerConfig(**{k: v for k, v in good.items() if k != "dropout"})  # all required


@pytest.mark.parametrize("name", MODELS)
def test_output_shape(name: str) -> None:
    model = build_lifter(name)
    x, _, _ = batch()
    for mode in (model.train, model.eval):
        mode()
        assert model(x).shape == (6, 13, 3)


@pytest.mark.parametrize("name", ["simplebl", "semgcn", "graformer", "jointformer"])
def test_other_joint_counts_with_an_explicit_graph(name: str) -> None:
    edges = [(i, i + 1) for i in range(15)]  # a 16-joint chain
    kwargs = {} if name in ("simplebl", "jointformer") else {"edges": edges}
    model = build_lifter(name, num_joints=16, **kwargs)
    assert model(torch.randn(3, 16, 2)).shape == (3, 16, 3)


def test_graph_models_need_edges_for_other_joint_counts() -> None:
    with pytest.raises(CabinliftError):
        build_lifter("semgcn", num_joints=16)


def test_bad_hyperparameter_is_a_cabinlift_error() -> None:
    with pytest.raises(CabinliftError, match="lifters.graformer"):
        build_lifter("graformer", no_such_option=1)


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = build_lifter(name).train()
    x, y, mask = batch(b=8)
    model.training_loss(x, y, mask).backward()
    for pname, p in model.named_parameters():
        if pname in NO_GRAD.get(name, ()):
            assert p.grad is None, pname
            continue
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize("name", MODELS)
def test_masked_joint_target_does_not_change_the_loss(name: str) -> None:
    model = build_lifter(name).train()
    x, y, mask = batch()
    assert (~mask).any()
    y2 = y.clone()
    y2[~mask] += torch.randn_like(y2[~mask]) * 5.0
    torch.manual_seed(1)
    loss1 = model.training_loss(x, y, mask)
    torch.manual_seed(1)  # same dropout draws
    loss2 = model.training_loss(x, y2, mask)
    assert torch.equal(loss1, loss2)
    y3 = y.clone()
    y3[mask] += 0.1
    torch.manual_seed(1)
    assert not torch.equal(model.training_loss(x, y3, mask), loss1)


@pytest.mark.parametrize("name", MODELS)
def test_eval_mode_is_deterministic(name: str) -> None:
    model = build_lifter(name).eval()
    x, _, _ = batch()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_forward_does_not_modify_its_input(name: str) -> None:
    model = build_lifter(name).train()
    x, _, _ = batch()
    x0 = x.clone()
    model(x)
    assert torch.equal(x, x0)


# --- SemGCN ------------------------------------------------------------------------------


def test_semgcn_edge_weights_are_a_softmax_over_graph_neighbours() -> None:
    torch.manual_seed(0)
    model = build_lifter("semgcn")
    mask = semgcn_mask(13, COCO13_EDGES)
    convs = [m for m in model.modules() if type(m).__name__ == "SemGraphConv"]
    assert len(convs) == 10  # input + 4 blocks x 2 + output
    for conv in convs:
        with torch.no_grad():
            conv.e.normal_()
        w = conv.edge_weights()
        assert torch.allclose(w.sum(dim=1), torch.ones(13), atol=1e-6)
        assert torch.equal(w[~mask], torch.zeros(int((~mask).sum())))
        assert (w[mask] > 0).all()
        # The softmax of each row runs over that row's neighbours (and itself) only.
        for i in range(13):
            nbrs = mask[i].nonzero().flatten()
            logits = torch.full((13,), -math.inf)
            logits[nbrs] = conv.e.detach().flatten()[mask[:i].sum() : mask[: i + 1].sum()]
            assert torch.allclose(w[i], torch.softmax(logits, 0), atol=1e-6)


def test_semgraphconv_matches_the_official_formula() -> None:
    from cabinlift.lifters.semgcn import SemGraphConv

    torch.manual_seed(0)
    mask = semgcn_mask(13, COCO13_EDGES)
    conv = SemGraphConv(5, 7, mask)
    with torch.no_grad():
        conv.e.normal_()
    x = torch.randn(4, 13, 5)
    adj = torch.full((13, 13), -9e15)
    adj[mask] = conv.e.detach().flatten()
    adj = torch.softmax(adj, dim=1)
    eye = torch.eye(13)
    ref = (adj * eye) @ (x @ conv.W[0]) + (adj * (1 - eye)) @ (x @ conv.W[1]) + conv.bias
    out = conv(x.transpose(0, 1).contiguous()).transpose(0, 1)
    assert torch.allclose(out, ref, atol=1e-5)


# --- GraFormer ---------------------------------------------------------------------------


def test_graformer_chebconv_matches_sum_of_chebyshev_terms() -> None:
    torch.manual_seed(0)
    model = build_lifter("graformer")
    conv = model.gconv_layers[0].gconv1
    x = torch.randn(4, 13, 96)
    ref = sum(model.cheb[k] @ x @ conv.weight[k, 0] for k in range(3)) + conv.bias
    out = conv(x.transpose(0, 1).contiguous(), model.cheb_rest).transpose(0, 1)
    assert torch.allclose(out, ref, atol=1e-4)


def test_graformer_layernorm_uses_the_unbiased_std_plus_eps() -> None:
    from cabinlift.lifters.graformer import GraFormerLayerNorm

    ln = GraFormerLayerNorm(96)
    x = torch.randn(3, 5, 96) * 3 + 1
    ref = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-6)
    assert torch.allclose(ln(x), ref, atol=1e-5)


def test_graformer_lam_gconv_matches_the_official_batch_laplacian() -> None:
    torch.manual_seed(0)
    net = build_lifter("graformer").atten_layers[0].ffn
    with torch.no_grad():
        net.A_hat.add_(0.1 * torch.rand(13, 13))
    x = torch.randn(4, 13, 96)
    a = net.A_hat.unsqueeze(0).repeat(4, 1, 1)
    d = (a.sum(1) + 1e-5) ** -0.5  # the official laplacian_batch
    lap = d.view(4, 13, 1) * a * d.view(4, 1, 13)
    ref = net.fc2(torch.bmm(lap, F.relu(net.fc1(torch.bmm(lap, x)))))
    out = net(x.transpose(0, 1).contiguous()).transpose(0, 1)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.equal(build_lifter("graformer").atten_layers[2].ffn.A_hat, torch.eye(13))


# --- GraphMLP ----------------------------------------------------------------------------


def test_graphmlp_gcn_matches_the_official_conv_and_einsum() -> None:
    torch.manual_seed(0)
    model = build_lifter("graphmlp").eval()
    gcn = model.blocks[0].gcn_1
    assert torch.equal(model.A, coco13_partitions())
    x = torch.randn(4, 512, 13)  # official layout (b, c, j)
    h = F.conv2d(x.unsqueeze(2), gcn.conv.weight.view(-1, 512, 1, 1), gcn.conv.bias)
    h = h.view(4, 4, 512, 1, 13)
    ref = torch.einsum("nkctv,kvw->nctw", h, model.A).squeeze(2)
    out = gcn(x.permute(2, 0, 1).contiguous(), model.a_cat).permute(1, 2, 0)
    assert torch.allclose(out, ref, atol=1e-4)


def test_graphmlp_joint_layernorm_and_droppath_schedule() -> None:
    model = build_lifter("graphmlp")
    blk = model.blocks[1]
    x = torch.randn(13, 4, 512)
    ref = F.layer_norm(x.permute(1, 2, 0), (13,), blk.norm1.weight, blk.norm1.bias, 1e-6)
    assert torch.allclose(blk._joint_norm(x), ref.permute(2, 0, 1), atol=1e-5)
    rates = [getattr(b.drop_path, "p", 0.0) for b in model.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2])


# --- JointFormer -------------------------------------------------------------------------


def test_jointformer_forward_is_the_last_intermediate_pose() -> None:
    model = build_lifter("jointformer").eval()
    x, _, _ = batch()
    with torch.no_grad():
        poses, errors = model.forward_all(x)
        assert poses.shape == errors.shape == (4, 6, 13, 3)
        assert torch.allclose(model(x), poses[-1], atol=1e-6)


def test_jointformer_loss_is_the_official_intermediate_objective() -> None:
    model = build_lifter("jointformer").eval()  # no dropout: both computations see one model
    x, y, mask = batch()
    poses, errors = model.forward_all(x)
    terms = [
        (masked_mse(p, y, mask) + masked_mse(e, (p.detach() - y).abs(), mask)) / 2
        for p, e in zip(poses, errors, strict=True)
    ]
    assert torch.allclose(model.training_loss(x, y, mask), torch.stack(terms).mean(), atol=1e-6)
