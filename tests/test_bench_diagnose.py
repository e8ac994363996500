"""`tuna bench diagnose`: the VAE's ceiling, the flow head's denoising error and resampling from partly
noised true latents, checked against an oracle flow head (exact velocity) and a blind one (zero)."""

import torch

from tuna.bench.diagnose import diagnose, true_latents
from tuna.bench.items import build_items
from tuna.data.shapes.world import WorldConfig

ITEMS = build_items("t2i", 0, 6, WorldConfig(height=64, width=64))


class PixelVAE:
    """A lossless "VAE" (latents are the pixels): its ceiling is the scorer's verdict on the truth."""

    dtype = torch.float32

    def encode(self, pixels):
        return pixels.clone()

    def decode(self, latents):
        return latents.clamp(-1, 1)


def test_an_oracle_flow_head_is_diagnosed_perfect_and_a_blind_one_is_not():
    vae = PixelVAE()
    x1 = true_latents(vae, ITEMS)
    kw = dict(steps=4, noise_levels=(0.0, 4.0), times=(0.3, 0.7), start_times=(0.0, 0.5))
    oracle = diagnose(vae, lambda x, t: (x1 - x) / (1 - t), ITEMS, **kw)
    assert oracle.decoder_ceiling[0.0] == 1.0 > oracle.decoder_ceiling[4.0]  # truth passes; heavy noise not
    assert all(model < 1e-10 < linear for model, linear in oracle.denoising_error.values())
    assert oracle.denoising_error[0.7][1] < oracle.denoising_error[0.3][1]  # less noise, easier
    assert oracle.resampled == {0.0: 1.0, 0.5: 1.0}

    blind = diagnose(vae, lambda x, t: torch.zeros_like(x), ITEMS, **kw)  # never moves: x̂1 = x_t
    assert all(model > linear for model, linear in blind.denoising_error.values())
    assert blind.resampled[0.0] == 0.0  # pure noise stays noise
    assert "decoder ceiling" in blind.table() and "t0=0.5" in blind.table()
    # the error is measured on the unguided velocity when one is given, resampling on the guided one
    mixed = diagnose(
        vae, lambda x, t: torch.zeros_like(x), ITEMS, conditional=lambda x, t: (x1 - x) / (1 - t), **kw
    )
    assert all(model < 1e-10 for model, _ in mixed.denoising_error.values()) and mixed.resampled[0.0] == 0.0


def test_diagnose_runs_on_a_real_checkpoint(tmp_path, capsys):
    from tuna.cli import main
    from tuna.config import get_preset
    from tuna.model.tuna import TunaModel
    from tuna.tokenizer import small_tokenizer

    model = TunaModel(get_preset("tiny"))
    model.init_weights()
    model.tokenizer = small_tokenizer()
    model.save_pretrained(tmp_path / "ckpt")
    argv = [
        "bench",
        "diagnose",
        "--model",
        str(tmp_path / "ckpt"),
        "--n",
        "2",
        "--size",
        "64",
        "--steps",
        "2",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "T2I diagnosis on 2" in out and "resampled from t0" in out
