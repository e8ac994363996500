"""WanVAE against diffusers' AutoencoderKLWan (tiny, random, Wan 2.2-style: residual, 2×2 patchify, 16×)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from diffusers import AutoencoderKLWan

from tuna.config import VAEConfig
from tuna.model.vae import WanVAE, vae_config_from_diffusers

Z_DIM = 4
MEAN = [0.3, -0.2, 0.5, 0.0]
STD = [1.5, 0.5, 2.0, 0.8]
TOL = 1e-5


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=8,
        decoder_base_dim=12,
        z_dim=Z_DIM,
        dim_mult=[1, 1, 2, 2],
        num_res_blocks=1,
        is_residual=True,
        in_channels=12,
        out_channels=12,
        patch_size=2,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        latents_mean=MEAN,
        latents_std=STD,
    ).eval()
    directory = tmp_path_factory.mktemp("wan_vae")
    vae.save_pretrained(directory)
    return vae, directory


@pytest.fixture(scope="module")
def ours(reference):
    return WanVAE.from_pretrained(reference[1])


def test_config_read_from_diffusers(reference):
    cfg = vae_config_from_diffusers(reference[1])
    assert cfg.z_dim == Z_DIM and cfg.decoder_base_dim == 12 and cfg.dim_mult == (1, 1, 2, 2)
    assert cfg.is_residual and cfg.patch_size == 2 and cfg.scale_factor_spatial == 16
    assert cfg.latents_mean == tuple(MEAN) and cfg.latents_std == tuple(STD)


def test_nothing_freshly_initialised_and_frozen(ours):
    report = ours.load_report
    assert report.initialised == [] and report.mismatched == [] and report.unused == []
    assert report.loaded
    assert not any(p.requires_grad for p in ours.parameters())
    ours.train()
    assert not ours.training and not ours.autoencoder.training


def _reference_mu(vae, pixels):
    with torch.no_grad():
        return vae.encode(pixels).latent_dist.mode()


@pytest.mark.parametrize("frames", [1, 5])
def test_encode_decode_parity(reference, ours, frames):
    vae, _ = reference
    torch.manual_seed(1)
    pixels = torch.rand(2, 3, frames, 32, 48) * 2 - 1
    mean = torch.tensor(MEAN).view(1, -1, 1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1, 1)

    latents = ours.encode(pixels)
    expected = (_reference_mu(vae, pixels) - mean) / std
    assert latents.shape == (2, Z_DIM, *ours.latent_shape(frames, 32, 48))
    assert latents.shape == (2, Z_DIM, 1 + (frames - 1) // 4, 2, 3)
    assert (latents - expected).abs().max().item() <= TOL

    decoded = ours.decode(latents)
    with torch.no_grad():
        expected_pixels = vae.decode(latents * std + mean).sample
    assert decoded.shape == (2, 3, frames, 32, 48)
    assert (decoded - expected_pixels).abs().max().item() <= TOL
    assert decoded.min() >= -1 and decoded.max() <= 1


def test_image_rank4_is_one_frame(ours):
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(ours.encode(image), ours.encode(image.unsqueeze(2)), rtol=0, atol=0)
    assert ours.decode(ours.encode(image)[:, :, 0]).shape == (1, 3, 1, 32, 32)


def test_sampling_uses_generator(ours):
    pixels = torch.rand(1, 3, 1, 32, 32) * 2 - 1
    a = ours.encode(pixels, sample=True, generator=torch.Generator().manual_seed(3))
    b = ours.encode(pixels, sample=True, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, ours.encode(pixels))


def test_identity_normalisation_without_stats(reference):
    vae, directory = reference
    cfg = dataclasses.replace(vae_config_from_diffusers(directory), latents_mean=None, latents_std=None)
    plain = WanVAE(cfg)
    plain.autoencoder.load_state_dict(vae.state_dict())
    pixels = torch.rand(1, 3, 1, 32, 32) * 2 - 1
    assert (plain.encode(pixels) - _reference_mu(vae, pixels)).abs().max().item() <= TOL


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 4, 1, 32, 32), "3 channels"),
        ((1, 3, 1, 100, 64), "multiples of 16"),
        ((1, 3, 1, 32, 40), "multiples of 16"),
        ((1, 3, 6, 32, 32), "1 \\+ 4k"),
        ((1, 3, 2, 32, 32), "1 \\+ 4k"),
        ((3, 32, 32), "got 3 dims"),
        ((1, 1, 3, 1, 32, 32), "got 6 dims"),
    ],
)
def test_encode_rejects_bad_pixels(ours, shape, message):
    with pytest.raises(ValueError, match=message):
        ours.encode(torch.zeros(shape))


def test_encode_rejects_integer_pixels(ours):
    with pytest.raises(ValueError, match="floating-point"):
        ours.encode(torch.zeros(1, 3, 1, 32, 32, dtype=torch.uint8))


def test_decode_rejects_wrong_channels(ours):
    with pytest.raises(ValueError, match=f"{Z_DIM} channels"):
        ours.decode(torch.zeros(1, Z_DIM + 1, 1, 2, 2))


def test_latent_shape(ours):
    assert ours.latent_shape(1, 512, 768) == (1, 32, 48)
    assert ours.latent_shape(81, 704, 1280) == (21, 44, 80)
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        ours.latent_shape(80, 512, 512)


def test_mismatched_stats_rejected():
    with pytest.raises(ValueError, match="one per latent channel"):
        WanVAE(VAEConfig(base_dim=8, decoder_base_dim=None, z_dim=4, latents_mean=(0.0,), latents_std=(1.0,)))
