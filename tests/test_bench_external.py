"""`tuna bench geneval | dpg`: images in the layouts GenEval's and DPG-Bench's scorers read."""

import json

import numpy as np
import pytest
from PIL import Image

from tuna.bench.external import (
    image_seed,
    read_dpg_prompts,
    read_geneval_metadata,
    write_dpg,
    write_geneval,
)

LINES = [
    '{"tag": "single_object", "include": [{"class": "cat", "count": 1}], "prompt": "a photo of a cat"}',
    '{"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"}',
    '{"tag": "counting", "include": [{"class": "dog", "count": 2}], "prompt": "a photo of two dogs"}',
]


def fake_generate(calls):
    """Images that encode their prompt and seed (a colour per seed), recording every call."""

    def generate(texts, seeds):
        calls.append((list(texts), list(seeds)))
        return [Image.new("RGB", (8, 8), (s % 256, len(t), 7)) for t, s in zip(texts, seeds)]

    return generate


def colour(path_or_image):
    image = Image.open(path_or_image) if not isinstance(path_or_image, Image.Image) else path_or_image
    return image.convert("RGB").getpixel((0, 0))


def test_geneval_layout_seeds_and_resume(tmp_path):
    meta = tmp_path / "evaluation_metadata.jsonl"
    meta.write_text("\n".join(LINES) + "\n")
    prompts = read_geneval_metadata(meta)
    assert [p.text for p in prompts] == ["a photo of a cat", "a photo of a red car", "a photo of two dogs"]
    out, calls = tmp_path / "images", []
    assert write_geneval(fake_generate(calls), prompts, out, n=2, seed=10, batch_size=3) == (3, 0)
    assert sorted(p.name for p in out.iterdir()) == ["00000", "00001", "00002"]
    for i, line in enumerate(LINES):
        folder = out / f"{i:05d}"
        assert (folder / "metadata.jsonl").read_text() == line + "\n"  # the line itself, for the scorer
        assert json.loads((folder / "metadata.jsonl").read_text())["prompt"] == prompts[i].text
        assert sorted(p.name for p in (folder / "samples").iterdir()) == ["0000.png", "0001.png"]
        for k in range(2):
            assert colour(folder / "samples" / f"{k:04d}.png") == (
                image_seed(10, i, k, 2),
                len(prompts[i].text),
                7,
            )
        assert Image.open(folder / "grid.png").size == (16, 8)
    assert [len(texts) for texts, _ in calls] == [3, 3]  # 6 images, batched 3 at a time across prompts
    # Stopped runs continue: a complete folder is skipped, an incomplete one is redrawn with its seeds.
    (out / "00001" / "samples" / "0001.png").unlink()
    calls.clear()
    assert write_geneval(fake_generate(calls), prompts, out, n=2, seed=10, batch_size=3) == (1, 2)
    assert calls == [(["a photo of a red car"] * 2, [12, 13])]
    assert colour(out / "00001" / "samples" / "0001.png") == (13, len("a photo of a red car"), 7)
    assert not list(out.rglob(".partial-*"))


def test_dpg_grid_tiles_are_the_samples_in_the_scorers_crop_order(tmp_path):
    prompts_dir = tmp_path / "prompts"
    prompts_dir.mkdir()
    for key, text in (("10", "a tall tree"), ("2", "a red kite over a lake"), ("abc", "a cat")):
        (prompts_dir / f"{key}.txt").write_text(text + "\n")
    prompts = read_dpg_prompts(prompts_dir)
    assert [p.key for p in prompts] == ["2", "10", "abc"]  # numeric ids in numeric order
    out, calls = tmp_path / "dpg", []
    assert write_dpg(fake_generate(calls), prompts, out, n=4, seed=0, batch_size=8) == (3, 0)
    image = Image.open(out / "10.png")
    assert image.size == (16, 16)
    # compute_dpg_bench.py crops (0,0), (r,0), (0,r), (r,r) for samples 0..3
    for k, (x, y) in enumerate([(0, 0), (8, 0), (0, 8), (8, 8)]):
        assert colour(image.crop((x, y, x + 8, y + 8))) == (image_seed(0, 1, k, 4), len("a tall tree"), 7)
    assert write_dpg(fake_generate(calls), prompts, out, n=4) == (0, 3)
    one = tmp_path / "one"
    write_dpg(fake_generate([]), prompts[:1], one, n=1)
    assert Image.open(one / "2.png").size == (8, 8)


def test_bad_inputs_are_named(tmp_path):
    meta = tmp_path / "m.jsonl"
    meta.write_text(LINES[0] + "\n{not json\n")
    with pytest.raises(ValueError, match=r"m.jsonl:2: not JSON"):
        read_geneval_metadata(meta)
    meta.write_text('{"tag": "x"}\n')
    with pytest.raises(ValueError, match=r'm.jsonl:1: expected a JSON object with a non-empty "prompt"'):
        read_geneval_metadata(meta)
    with pytest.raises(FileNotFoundError, match="no GenEval metadata file"):
        read_geneval_metadata(tmp_path / "missing.jsonl")
    empty = tmp_path / "prompts"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no prompt files"):
        read_dpg_prompts(empty)
    (empty / "1.txt").write_text("  \n")
    with pytest.raises(ValueError, match="1.txt is empty"):
        read_dpg_prompts(empty)
    (empty / "1.txt").write_text("a cat")
    with pytest.raises(ValueError, match="at most 4 samples"):
        write_dpg(fake_generate([]), read_dpg_prompts(empty), tmp_path / "o", n=5)
    with pytest.raises(ValueError, match="must be positive"):
        write_geneval(fake_generate([]), read_dpg_prompts(empty), tmp_path / "o", n=0)


def test_cli_writes_a_real_models_images_for_geneval(tmp_path, capsys):
    """Through `tuna bench geneval` on a tiny saved model: each sample is the image `tuna generate` draws
    with that seed."""
    from serve_helpers import tiny_pipe
    from tuna.cli import main

    pipe = tiny_pipe()
    pipe.model.save_pretrained(tmp_path / "ckpt")
    meta = tmp_path / "evaluation_metadata.jsonl"
    meta.write_text("\n".join(LINES[:2]) + "\n")
    argv = ["bench", "geneval", "--model", str(tmp_path / "ckpt"), "--metadata", str(meta),
            "--out", str(tmp_path / "out"), "--n", "2", "--steps", "2", "--seed", "5", "--batch-size", "3"]  # fmt: skip
    assert main(argv) == 0
    assert "prompts written: 2, already complete: 0" in capsys.readouterr().out
    sample = np.asarray(Image.open(tmp_path / "out" / "00001" / "samples" / "0001.png"), dtype=int)
    alone = np.asarray(pipe.generate("a photo of a red car", steps=2, seed=image_seed(5, 1, 1, 2)), dtype=int)
    assert sample.shape == alone.shape == (64, 64, 3)  # the model's own image_size
    assert np.abs(sample - alone).max() <= 2  # batched with other prompts: equal up to float rounding
    other = np.asarray(Image.open(tmp_path / "out" / "00001" / "samples" / "0000.png"), dtype=int)
    assert np.abs(other - alone).max() > 2  # another seed, another picture
