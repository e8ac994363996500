import math

import pytest
import torch

from tuna.config import NoiseConfig
from tuna.model.noise import (
    add_noise,
    resolution_shift,
    sample_time,
    schedule_shift,
    shift_time,
    velocity_target,
)
from tuna.model.timestep import timestep_features


def test_linear_path_and_velocity():
    x1, x0 = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    t = torch.tensor([0.0, 0.3, 1.0])
    xt = add_noise(x1, x0, t)
    assert torch.allclose(xt[0], x0[0]) and torch.allclose(xt[2], x1[2])
    # v is the time derivative of the path
    eps = 1e-3
    dt = (add_noise(x1, x0, t + eps) - xt) / eps
    assert torch.allclose(dt, velocity_target(x1, x0), atol=1e-3)


def test_shift_fixes_endpoints_and_moves_towards_noise():
    t = torch.linspace(0, 1, 11)
    assert torch.allclose(shift_time(t, 1.0), t)
    shifted = shift_time(t, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1
    assert (shifted[1:-1] < t[1:-1]).all()
    assert torch.all(shifted[1:] >= shifted[:-1])
    with pytest.raises(ValueError):
        shift_time(t, 0.0)


@pytest.mark.parametrize("distribution", ["uniform", "logit_normal"])
def test_sample_time_in_range_and_seeded(distribution):
    cfg = NoiseConfig(distribution=distribution, shift=1.0)
    a = sample_time(1000, cfg, generator=torch.Generator().manual_seed(1))
    b = sample_time(1000, cfg, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert abs(a.mean().item() - 0.5) < 0.05


def test_resolution_shift_grows_with_tokens():
    assert resolution_shift(3.0, 1024, 1024) == 3.0
    assert math.isclose(resolution_shift(3.0, 4096, 1024), 6.0)
    cfg = NoiseConfig(resolution_shift=True)
    small = sample_time(2000, cfg, tokens=256, generator=torch.Generator().manual_seed(0)).mean()
    large = sample_time(2000, cfg, tokens=4096, generator=torch.Generator().manual_seed(0)).mean()
    assert large < small
    with pytest.raises(ValueError, match="number of visual tokens"):
        sample_time(2, cfg)
    assert schedule_shift(NoiseConfig(shift=2.0), tokens=None) == 2.0  # fixed shift: tokens unused
    assert math.isclose(
        schedule_shift(NoiseConfig(shift=1.0, resolution_shift=True, base_tokens=64), 320), 5**0.5
    )
    with pytest.raises(ValueError, match="unknown time distribution"):
        sample_time(2, NoiseConfig(distribution="beta"))


def test_timestep_features_distinguish_times():
    f = timestep_features(torch.tensor([0.0, 0.5, 1.0]), 32)
    assert f.shape == (3, 32)
    assert not torch.allclose(f[1], f[2])
