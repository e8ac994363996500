"""Representation encoder Φ′ against transformers' SigLIP / SigLIP 2 vision models (tiny, random)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from transformers import (
    Siglip2VisionConfig,
    Siglip2VisionModel,
    SiglipConfig,
    SiglipModel,
    SiglipVisionConfig,
    SiglipVisionModel,
)
from transformers.models.siglip2.modeling_siglip2 import Siglip2VisionEmbeddings

from tuna.config import EncoderConfig
from tuna.model.connector import Connector
from tuna.model.encoder import RepresentationEncoder
from tuna.model.hf.siglip import encoder_config_from_hf, load_siglip

DIMS = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4, patch_size=16)
GRID = 4
LATENT_CHANNELS = 6
TOL = 1e-5


def _randomise(model: torch.nn.Module) -> torch.nn.Module:
    # Random init leaves biases and LayerNorms at 0 / 1; perturb everything so parity means something.
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def siglip(tmp_path_factory):
    torch.manual_seed(0)
    model = _randomise(SiglipVisionModel(SiglipVisionConfig(image_size=GRID * 16, **DIMS)))
    directory = tmp_path_factory.mktemp("siglip")
    model.save_pretrained(directory)
    return model, directory


@pytest.fixture(scope="module")
def siglip2(tmp_path_factory):
    torch.manual_seed(0)
    model = _randomise(Siglip2VisionModel(Siglip2VisionConfig(num_patches=GRID * GRID, **DIMS)))
    directory = tmp_path_factory.mktemp("siglip2")
    model.save_pretrained(directory)
    return model, directory


def _load(directory, feature_layer=-2):
    cfg = encoder_config_from_hf(directory, feature_layer=feature_layer)
    encoder = RepresentationEncoder(cfg, latent_channels=LATENT_CHANNELS).eval()
    return encoder, load_siglip(encoder, directory)


def _siglip_hidden_states(model, pixels):
    with torch.no_grad():
        return model(pixels, output_hidden_states=True).hidden_states


def _siglip2_hidden_states(model, pixels):
    # NaFlex input: (B, N, 3*16*16) patches of a GRID×GRID image, all valid.
    patches = pixels.unfold(2, 16, 16).unfold(3, 16, 16)  # (B, 3, G, G, 16, 16)
    patches = patches.permute(0, 2, 3, 4, 5, 1).reshape(pixels.shape[0], GRID * GRID, -1)  # (B, N, 16*16*3)
    shapes = torch.tensor([[GRID, GRID]] * pixels.shape[0])
    mask = torch.ones(pixels.shape[0], GRID * GRID, dtype=torch.long)
    with torch.no_grad():
        return model(
            patches, pixel_attention_mask=mask, spatial_shapes=shapes, output_hidden_states=True
        ).hidden_states


@pytest.mark.parametrize("feature_layer", [-2, -1, 1])
@pytest.mark.parametrize(
    ("family", "run"), [("siglip", _siglip_hidden_states), ("siglip2", _siglip2_hidden_states)]
)
def test_trunk_matches_transformers(request, family, run, feature_layer):
    model, directory = request.getfixturevalue(family)
    encoder, report = _load(directory, feature_layer)
    depth = encoder.cfg.feature_depth
    assert len(encoder.layers) == depth == (feature_layer % (DIMS["num_hidden_layers"] + 1))

    hidden = run(model, torch.randn(2, 3, GRID * 16, GRID * 16))
    with torch.no_grad():
        ours = encoder.trunk(hidden[0])
    assert (ours - hidden[depth]).abs().max().item() <= TOL

    assert report.initialised == ["patch_embedding.weight", "patch_embedding.bias"]
    assert report.mismatched == []
    unused = set(report.unused)
    assert {"embeddings.patch_embedding.weight", "post_layernorm.weight", "head.probe"} <= unused
    assert {f"encoder.layers.{i}.mlp.fc1.weight" for i in range(depth, DIMS["num_hidden_layers"])} <= unused
    assert not any(k.startswith(f"encoder.layers.{i}.") for k in unused for i in range(depth))


def test_config_read_from_checkpoint(siglip, siglip2):
    for _, directory in (siglip, siglip2):
        cfg = encoder_config_from_hf(directory)
        assert cfg == EncoderConfig(
            hidden_size=32,
            intermediate_size=64,
            num_layers=4,
            num_heads=4,
            layer_norm_eps=1e-6,
            hidden_act="gelu_pytorch_tanh",
            position_grid=GRID,
            feature_layer=-2,
        )


def test_full_model_checkpoint(tmp_path):
    # A full image-text checkpoint: vision keys under `vision_model.`, text tower ignored.
    torch.manual_seed(0)
    vision = dict(image_size=GRID * 16, **DIMS)
    text = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, vocab_size=64
    )
    model = SiglipModel(
        SiglipConfig(vision_config=vision, text_config=text, bos_token_id=None, eos_token_id=None)
    )
    _randomise(model).save_pretrained(tmp_path)
    encoder, report = _load(tmp_path)
    assert encoder.cfg.position_grid == GRID and encoder.cfg.num_layers == DIMS["num_hidden_layers"]
    assert report.initialised == ["patch_embedding.weight", "patch_embedding.bias"]
    assert any(k.startswith("text_model.") for k in report.unused)
    hidden = _siglip_hidden_states(model.vision_model, torch.randn(1, 3, GRID * 16, GRID * 16))
    with torch.no_grad():
        assert (encoder.trunk(hidden[0]) - hidden[encoder.cfg.feature_depth]).abs().max().item() <= TOL


def test_unknown_model_type_rejected(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip_vision_model"}))
    with pytest.raises(ValueError, match="not a SigLIP"):
        encoder_config_from_hf(tmp_path)


@pytest.mark.parametrize("family", ["siglip", "siglip2"])
def test_position_embedding(request, family):
    model, directory = request.getfixturevalue(family)
    encoder, _ = _load(directory)
    table = model.embeddings.position_embedding.weight  # (G*G, D)
    assert torch.equal(encoder.position_embeddings(GRID, GRID), table)  # native grid: no interpolation

    resized = encoder.position_embeddings(3, 7)  # non-square latent grid
    assert resized.shape == (3 * 7, DIMS["hidden_size"])
    # Same resize as SigLIP 2 applies to its own positions for other aspect ratios.
    expected = Siglip2VisionEmbeddings.resize_positional_embeddings(
        table.detach().reshape(GRID, GRID, -1), torch.tensor([[3, 7]]), max_length=3 * 7
    )[0]
    assert (resized - expected).abs().max().item() <= TOL


def _tiny_encoder() -> RepresentationEncoder:
    torch.manual_seed(0)
    cfg = EncoderConfig(hidden_size=32, intermediate_size=64, num_layers=3, num_heads=4, position_grid=GRID)
    return RepresentationEncoder(cfg, latent_channels=LATENT_CHANNELS).eval()


def test_frames_encoded_independently():
    encoder = _tiny_encoder()
    video = torch.randn(2, LATENT_CHANNELS, 3, 5, 3)  # 3 latent frames, non-square 5×3 grid
    with torch.no_grad():
        tokens = encoder(video)
        per_frame = torch.cat([encoder(video[:, :, f]) for f in range(3)], dim=1)
    assert tokens.shape == (2, 3 * 5 * 3, 32)
    assert (tokens - per_frame).abs().max().item() <= TOL


def test_forward_is_patch_plus_position_then_trunk():
    encoder = _tiny_encoder()
    latents = torch.randn(1, LATENT_CHANNELS, GRID, GRID)
    with torch.no_grad():
        tokens = encoder(latents)
        flat = latents.flatten(2).transpose(1, 2)  # b c h w -> b (h w) c
        manual = encoder.trunk(encoder.patch_embedding(flat) + encoder.position_embedding)
    assert (tokens - manual).abs().max().item() <= TOL


def test_gradients_reach_patch_embedding():
    encoder = _tiny_encoder().train()
    encoder(torch.randn(1, LATENT_CHANNELS, 2, 3, 2)).square().mean().backward()
    assert encoder.patch_embedding.weight.grad is not None
    assert encoder.position_embedding.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, LATENT_CHANNELS + 1, 4, 4), f"{LATENT_CHANNELS}, H, W"),
        ((LATENT_CHANNELS, 4), "got"),
        ((1, 1, 6, 1, 4, 4), "got"),
    ],
)
def test_bad_latents_rejected(shape, message):
    with pytest.raises(ValueError, match=message):
        _tiny_encoder()(torch.zeros(shape))


def test_feature_depth_limits_layers():
    cfg = dataclasses.replace(
        EncoderConfig(hidden_size=32, intermediate_size=64, num_layers=5, num_heads=4), feature_layer=-3
    )
    assert len(RepresentationEncoder(cfg, LATENT_CHANNELS).layers) == 3


def test_connector_shape():
    connector = Connector(in_dim=32, out_dim=48)
    assert connector(torch.randn(2, 7, 32)).shape == (2, 7, 48)
    assert connector.fc1.out_features == 48
    assert Connector(32, 48, hidden_dim=16).fc1.out_features == 16
