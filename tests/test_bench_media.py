"""`tuna bench vbench | edits`: videos named as VBench reads them, edits written where a benchmark wants."""

import json

import av
import numpy as np
import pytest
from PIL import Image

from tuna.bench.edits import read_edit_requests, write_edits
from tuna.bench.external import image_seed
from tuna.bench.vbench import read_vbench_prompts, write_vbench


def frames_of(path):
    with av.open(str(path)) as container:
        return [f.to_image() for f in container.decode(video=0)]


def test_vbench_names_seeds_and_resume(tmp_path):
    listing = tmp_path / "all_dimension.txt"
    listing.write_text("a dog running on grass\n\nA 3D model of a 1800s victorian house.\n")
    prompts = read_vbench_prompts(listing)
    calls = []

    def generate(texts, seeds):
        calls.append(list(seeds))
        return [[Image.new("RGB", (32, 32), (s * 20 % 256, 100, 100))] * 5 for s in seeds]

    out = tmp_path / "videos"
    assert write_vbench(generate, prompts, out, n=3, seed=1, batch_size=2) == (2, 0)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{p}-{k}.mp4" for p in ("a dog running on grass", "A 3D model of a 1800s victorian house.") for k in range(3))  # fmt: skip
    video = frames_of(out / "A 3D model of a 1800s victorian house.-2.mp4")
    assert len(video) == 5
    assert abs(video[0].getpixel((16, 16))[0] - image_seed(1, 1, 2, 3) * 20 % 256) <= 8  # lossy H.264
    (out / "a dog running on grass-1.mp4").unlink()
    calls.clear()
    assert write_vbench(generate, prompts, out, n=3, seed=1, batch_size=2) == (1, 1)
    assert calls == [[1, 2], [3]]  # the incomplete prompt again, with its own seeds


def test_vbench_prompts_must_name_files(tmp_path):
    listing = tmp_path / "p.txt"
    for text, message in (
        ("a cat/dog", "p.txt:1: a prompt with '/'"),
        ("x" * 300, "too long"),
        ("\n\n", "holds no prompts"),
    ):
        listing.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_vbench_prompts(listing)


def edit_requests(tmp_path, records):
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "wide.png")
    Image.new("RGB", (30, 40), (30, 200, 30)).save(tmp_path / "tall.png")
    path = tmp_path / "edits.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_edits_go_to_their_outputs_batched_by_size(tmp_path):
    records = [
        {"raw_image": "wide.png", "instruction": "make it blue", "output": "fullset/color/en/a.png"},
        {"image": "tall.png", "prompt": "make it red"},
        {"raw_image": "wide.png", "instruction": "make it green", "output": "fullset/color/en/b.png"},
    ]
    requests = read_edit_requests(edit_requests(tmp_path, records))
    assert [r.output for r in requests] == ["fullset/color/en/a.png", "00001.png", "fullset/color/en/b.png"]
    calls = []

    def edit(images, instructions, seeds):
        calls.append((tuple(im.size for im in images), list(instructions), list(seeds)))
        return [Image.new("RGB", im.size, (s, 0, 0)) for im, s in zip(images, seeds)]

    out = tmp_path / "out"
    assert write_edits(edit, requests, out, seed=10, batch_size=4) == (3, 0)
    assert calls == [(((40, 30), (40, 30)), ["make it blue", "make it green"], [10, 12]),
                     (((30, 40),), ["make it red"], [11])]  # fmt: skip
    assert Image.open(out / "fullset/color/en/b.png").getpixel((0, 0)) == (12, 0, 0)
    assert write_edits(edit, requests, out, seed=10) == (0, 3)


def test_bad_edit_requests_are_named(tmp_path):
    good = {"raw_image": "wide.png", "instruction": "x"}
    for record, message in (
        ({"raw_image": "nope.png", "instruction": "x"}, "edits.jsonl:2: no image file"),
        ({"raw_image": "wide.png"}, 'non-empty "instruction"'),
        ({**good, "output": "../escape.png"}, "relative .png path"),
        ({**good, "output": "/abs.png"}, "relative .png path"),
        ({**good, "output": "a.jpg"}, "relative .png path"),
        ({**good, "output": "00000.png"}, "also line 1's"),
    ):
        with pytest.raises(ValueError, match=message):
            read_edit_requests(edit_requests(tmp_path, [good, record]))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    requests = read_edit_requests(
        edit_requests(tmp_path, [good, {"raw_image": "broken.png", "instruction": "x"}])
    )
    with pytest.raises(ValueError, match="request at line 2: unreadable image"):
        write_edits(lambda *a: [], requests, tmp_path / "o")


def test_cli_vbench_and_edits_with_a_real_model(tmp_path, capsys):
    from serve_helpers import tiny_pipe
    from tuna.cli import main

    pipe = tiny_pipe()
    pipe.model.save_pretrained(tmp_path / "ckpt")
    model = ["--model", str(tmp_path / "ckpt"), "--steps", "2"]
    listing = tmp_path / "prompts.txt"
    listing.write_text("a red circle moving left\n")
    argv = ["bench", "vbench", *model, "--prompts", str(listing), "--out", str(tmp_path / "v"), "--n", "2", "--frames", "5"]  # fmt: skip
    assert main(argv) == 0
    assert "prompts written: 1" in capsys.readouterr().out
    assert len(frames_of(tmp_path / "v" / "a red circle moving left-1.mp4")) == 5

    data = edit_requests(
        tmp_path, [{"raw_image": "wide.png", "instruction": "make it blue", "output": "x/y.png"}]
    )
    assert (
        main(["bench", "edits", *model, "--data", str(data), "--out", str(tmp_path / "e"), "--seed", "3"])
        == 0
    )
    result = np.asarray(Image.open(tmp_path / "e" / "x" / "y.png"), dtype=int)
    alone = np.asarray(
        pipe.edit(Image.open(tmp_path / "wide.png"), "make it blue", steps=2, seed=3), dtype=int
    )
    assert result.shape == alone.shape and np.abs(result - alone).max() <= 2
