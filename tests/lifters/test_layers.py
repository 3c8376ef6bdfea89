"""The lifters' own layers are plain PyTorch: DropPath drops whole samples, attention is the
softmax formula with dropout on its probabilities."""

from __future__ import annotations

import torch
from torch import nn

from cabinlift.lifters.layers import DropPath, attend


def test_droppath_drops_whole_samples_along_batch_dim() -> None:
    torch.manual_seed(0)
    x = torch.ones(13, 256, 8)  # joint-major: samples on dim 1
    y = DropPath(0.5, batch_dim=1).train()(x)
    per_sample = y.amax(dim=(0, 2))
    assert torch.equal(y, per_sample.view(1, -1, 1).expand_as(y))
    assert set(per_sample.tolist()) == {0.0, 2.0}
    assert DropPath(0.5, batch_dim=1).eval()(x) is x


def test_attention_matches_softmax_formula() -> None:
    q, k, v = (torch.randn(4, 2, 13, 8) for _ in range(3))
    ref = torch.softmax(q @ k.transpose(-2, -1) / 8**0.5, dim=-1) @ v
    assert torch.allclose(attend(q, k, v, nn.Dropout(0.0)), ref, atol=1e-5)
    assert torch.allclose(attend(q, k, v, nn.Dropout(0.5).eval()), ref, atol=1e-5)
    torch.manual_seed(0)
    out = attend(q, k, v, nn.Dropout(0.5).train())
    assert out.shape == ref.shape and not torch.allclose(out, ref)


def test_lifters_hold_only_standard_dropout() -> None:
    """No training machinery inside the networks: every dropout is ``nn.Dropout``."""
    from cabinlift.lifters import available, build_lifter

    for name in available():
        kinds = {type(m).__name__ for m in build_lifter(name).modules()}
        assert not {"NoiseDropout", "NoiseDropPath"} & kinds, name
        assert "Dropout" in kinds, name
