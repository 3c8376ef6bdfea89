"""The shared layers: the fast CPU dropout must behave like inverted dropout."""

from __future__ import annotations

import pytest
import torch

from cabinlift.lifters.layers import Dropout, DropPath, attention, dropout


@pytest.mark.parametrize("p", [0.1, 0.2, 0.25, 0.5])
def test_dropout_rate_and_expectation(p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(400_000)
    y = dropout(x, p, training=True)
    dropped = (y == 0).float().mean().item()
    assert dropped == pytest.approx(p, abs=0.005)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, kept[0].item()))
    assert kept[0].item() == pytest.approx(1 / (1 - p), rel=1e-4)


def test_dropout_is_identity_in_eval_and_reproducible_with_a_seed() -> None:
    x = torch.randn(3, 5, 7)
    layer = Dropout(0.3).eval()
    assert layer(x) is x
    layer.train()
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(3)
    assert torch.equal(a, layer(x))
    assert a.shape == x.shape
    assert torch.equal(dropout(x, 1.0, True), torch.zeros_like(x))


def test_dropout_gradient_is_masked_and_scaled() -> None:
    x = torch.randn(64, 100, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x, 0.5, True)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)


def test_droppath_drops_whole_samples_along_batch_dim() -> None:
    torch.manual_seed(0)
    x = torch.ones(13, 256, 8)  # joint-major: samples on dim 1
    y = DropPath(0.5, batch_dim=1).train()(x)
    per_sample = y.amax(dim=(0, 2))
    assert torch.equal(y, per_sample.view(1, -1, 1).expand_as(y))
    assert set(per_sample.tolist()) == {0.0, 2.0}
    assert DropPath(0.5, batch_dim=1).eval()(x) is x


def test_attention_matches_softmax_formula_without_dropout() -> None:
    q, k, v = (torch.randn(4, 2, 13, 8) for _ in range(3))
    ref = torch.softmax(q @ k.transpose(-2, -1) / 8**0.5, dim=-1) @ v
    assert torch.allclose(attention(q, k, v, 0.0, True), ref, atol=1e-5)
    assert torch.allclose(attention(q, k, v, 0.1, False), ref, atol=1e-5)
    torch.manual_seed(0)
    out = attention(q, k, v, 0.5, True)
    assert out.shape == ref.shape and not torch.allclose(out, ref)


def _lanes(n: int, seed: int) -> torch.Tensor:
    bits = torch.empty((n + 3) // 4, dtype=torch.int64)
    bits.random_(-(2**63), None, generator=torch.Generator().manual_seed(seed))
    return bits.view(torch.int16)[:n]


def test_buffered_dropout_reads_consecutive_lanes_and_counts_them() -> None:
    from cabinlift.lifters.layers import noise_from

    x = torch.ones(4000)
    buf = _lanes(8000, 7)
    with noise_from(buf) as scope:
        a1, a2 = dropout(x, 0.25, True), dropout(x, 0.25, True)
    assert scope[1] == 8000
    with noise_from(buf):
        b1 = dropout(x, 0.25, True)
    assert torch.equal(a1, b1)  # same lanes, same mask
    assert not torch.equal(a1, a2)  # the second call reads the next 4000 lanes
    # lane >= k - 32768 keeps, with k = 0.25 * 65536: a hand check of the rule
    expected = (buf[4000:] >= 16384 - 32768).float() / 0.75
    assert torch.allclose(a2, expected)
    kept = (a1 > 0).float().mean().item()
    assert abs(kept - 0.75) < 0.03
    with noise_from(None) as count:  # counting only: nothing dropped
        assert torch.equal(dropout(x, 0.5, True), x)
        DropPath(0.3, batch_dim=0)(torch.ones(5, 3))
    assert count[1] == 4000 + 5
    with pytest.raises(RuntimeError, match="too short"), noise_from(buf[:10]):
        dropout(x, 0.5, True)


def test_buffered_noise_under_vmap_equals_each_run_alone() -> None:
    from torch.func import vmap

    from cabinlift.lifters.layers import noise_from

    x = torch.randn(3, 64, 13)

    def one(noise: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        with noise_from(noise):
            return DropPath(0.3, batch_dim=0)(dropout(xi, 0.5, True))

    noise = torch.stack([_lanes(64 * 13 + 64, s) for s in (5, 6, 7)])
    together = vmap(one, randomness="error")(noise, x)
    for r in range(3):
        assert torch.equal(together[r], one(noise[r], x[r]))
