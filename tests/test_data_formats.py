"""Small files of every official jsonl format and a webdataset shard: loaded, bucketed, trained on;
bad records are skipped with a counted warning naming file and line, and too many stop the run."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from tuna.data.buckets import buckets, nearest_bucket
from tuna.data.formats import BadRecord, Formatter
from tuna.data.sources import JsonlSource, TarShardSource
from tuna.media import write_video
from tuna.sequence import Text, Visual
from tuna.train.cli import parse_data
from tuna.train.presets import get_train_preset

FRAMES = 5  # the tiny preset's video frames


def _image(path, size=(64, 64), color=(200, 30, 30)):
    img = Image.new("RGB", size, (240, 240, 240))
    img.paste(color, (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    img.save(path)
    return path.name


def _jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "data"
    (d / "img").mkdir(parents=True)
    a, b = _image(d / "img" / "a.png"), _image(d / "img" / "b.png", (96, 64), (30, 30, 200))
    (d / "img" / "broken.png").write_bytes(b"not an image at all")
    frames = [Image.fromarray(np.full((64, 64, 3), 20 * i, np.uint8)) for i in range(9)]
    write_video(frames, d / "clip.mp4")
    write_video(frames[:2], d / "short.mp4")  # wrong frame count: fewer than FRAMES
    files = {
        "t2i": _jsonl(
            d / "t2i.jsonl",
            [
                {"image": f"img/{a}", "caption": "a red square"},
                {"image": f"img/{b}", "caption": "a blue square, wide"},
                {"image": "img/missing.png", "caption": "a file that is not there"},  # line 3: missing file
                {"image": f"img/{a}", "caption": "  "},  # line 4: empty caption
            ],
        ),
        "caption": _jsonl(d / "caption.jsonl", [{"image": f"img/{a}", "caption": "red on white"}]),
        "und": _jsonl(
            d / "und.jsonl",
            [
                {
                    "image": f"img/{a}",
                    "conversations": [
                        {"from": "human", "value": "<image>\\nWhat colour is the square?"},
                        {"from": "gpt", "value": "red"},
                        {"from": "human", "value": "And the background?"},
                        {"from": "gpt", "value": "white"},
                    ],
                },
                {
                    "image": "img/broken.png",
                    "conversations": [  # line 2: unreadable image
                        {"from": "human", "value": "<image> what?"},
                        {"from": "gpt", "value": "x"},
                    ],
                },
                "{not json",  # line 3
            ],
        ),
        "edit": _jsonl(
            d / "edit.jsonl",
            [
                {"raw_image": f"img/{a}", "out_image": f"img/{b}", "instruction": "make it blue"},
            ],
        ),
        "video": _jsonl(
            d / "video.jsonl",
            [
                {"video": "clip.mp4", "caption": "a fade from black"},
                {"video": "short.mp4", "caption": "too short"},  # line 2: wrong frame count
            ],
        ),
        "text": _jsonl(
            d / "text.jsonl", [{"text": "Shapes are circles, squares and triangles."}, {"text": ""}]
        ),
    }
    shards = d / "shards"
    shards.mkdir()
    with tarfile.open(shards / "000000.tar", "w") as tar:
        for key, record, png in (("s0", {"image": "s0.png", "caption": "red"}, True),
                                 ("s1", {"image": "png", "caption": "red again"}, True),
                                 ("s2", {"image": "s2.png", "caption": "no png member"}, False)):  # fmt: skip
            members = {f"{key}.json": json.dumps(record).encode()}
            if png:
                members[f"{key}.png"] = (d / "img" / a).read_bytes()
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    files["shards"] = shards
    return files


def _fmt(byte_tokenizer):
    return Formatter(lambda s: byte_tokenizer.encode(s, add_special_tokens=False), 64, 16, FRAMES)


def test_every_format_loads_and_bad_records_name_their_line(dataset, byte_tokenizer):
    fmt = _fmt(byte_tokenizer)
    t2i = JsonlSource(dataset["t2i"], "t2i")
    segments = t2i.get(1, fmt)  # the 96×64 image goes to its aspect-ratio bucket
    visual = next(s for s in segments if isinstance(s, Visual))
    assert visual.noisy and tuple(visual.pixels.shape) == (3, 1, 48, 80)
    for index, line in ((2, 3), (3, 4)):
        with pytest.raises(BadRecord, match=rf"t2i\.jsonl:{line}"):
            t2i.get(index, fmt)
    und = JsonlSource(dataset["und"], "und").get(0, fmt)
    assert isinstance(und[1], Visual) and sum(isinstance(s, Text) and s.supervised for s in und) == 2
    edit = JsonlSource(dataset["edit"], "edit").get(0, fmt)
    source, target = [s for s in edit if isinstance(s, Visual)]
    assert source.pixels.shape == target.pixels.shape and target.noisy and not source.noisy
    video = JsonlSource(dataset["video"], "video")
    assert next(s for s in video.get(0, fmt) if isinstance(s, Visual)).pixels.shape[1] == FRAMES
    with pytest.raises(BadRecord, match=r"video\.jsonl:2: .*frames"):
        video.get(1, fmt)
    shards = TarShardSource(dataset["shards"], "t2i")
    assert len(shards) == 3 and shards.get(1, fmt)
    with pytest.raises(BadRecord, match=r"000000\.tar:s2"):
        shards.get(2, fmt)


def test_buckets_keep_area_and_stride():
    for width, height in buckets(512, 16):
        assert width % 16 == 0 and height % 16 == 0 and 0.85 < width * height / 512**2 < 1.15
    assert nearest_bucket(1920, 1080, 512, 16) == (688, 384)


def _cfg(dataset, **data):
    specs = [f"{kind}={path}:1" for kind, path in dataset.items() if kind != "shards"]
    specs.append(f"t2i={dataset['shards']}:1")
    cfg = get_train_preset("tiny")
    mixture = parse_data(specs, cfg.data.mixture)
    data_cfg = dataclasses.replace(cfg.data, mixture=mixture, global_batch=16, micro_batch=8, **data)
    return dataclasses.replace(cfg, steps=3, save_every=100, data=data_cfg)


def test_trains_on_every_format_skipping_bad_records(dataset, tmp_path, caplog):
    from tuna.train.loop import train

    cfg = _cfg(dataset, max_bad_fraction=0.5)
    with caplog.at_level(logging.WARNING, logger="tuna.data.mixture"):
        rows = train(cfg, tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in rows)
    warnings = [r.getMessage() for r in caplog.records]
    assert rows[-1]["bad_records"] == len(warnings) > 0
    assert any("t2i.jsonl:3" in w for w in warnings) and all("skipping bad record" in w for w in warnings)
    state = torch.load(next((tmp_path / "run" / "checkpoints").glob("*.pt")), weights_only=True)["data"]
    assert all(c > 0 for c in state["cursors"]), "every source was trained on"


def test_too_many_bad_records_stop_with_a_clear_error(dataset, tmp_path):
    from tuna.train.loop import train

    cfg = _cfg(dataset, max_bad_fraction=0.05, bad_grace=8)
    with pytest.raises(ValueError, match=r"records read were bad .*max_bad_fraction=0.05"):
        train(cfg, tmp_path / "run")


def test_condition_dropout_is_reproducible_and_matches_guidance_rows():
    from tuna.data.formats import Formatter

    fmt = Formatter(lambda s: [ord(c) for c in s], 64, 16, 5, cond_dropout=0.3)
    keys = [f"t2i.jsonl:{i}" for i in range(3000)]
    drops = [fmt.drop_prompt(k) for k in keys]
    assert drops == [fmt.drop_prompt(k) for k in keys]  # same sample, same fate
    assert abs(sum(drops) / len(keys) - 0.3) < 0.03
    edits = [fmt.edit_drops(k) for k in keys]
    text_only = sum(t and not i for t, i in edits) / len(keys)
    image_only = sum(i and not t for t, i in edits) / len(keys)
    both = sum(t and i for t, i in edits) / len(keys)
    for share in (text_only, image_only, both):
        assert abs(share - 0.1) < 0.02
    assert Formatter(lambda s: [], 64, 16, 5).drop_prompt("x") is False


def test_condition_dropout_draws_anew_each_epoch_of_a_finite_source(tmp_path, byte_tokenizer):
    # A finite jsonl is read many times in a long run: if the draw hashed only the record, the same
    # records would lose their prompt in every epoch and the rest would never train unconditionally.
    from tuna.data.mixture import DataStream, Entry

    image = _image(tmp_path / "a.png")
    n = 40
    source = JsonlSource(
        _jsonl(tmp_path / "t2i.jsonl", [{"image": image, "caption": f"shape {i}"} for i in range(n)]), "t2i"
    )
    fmt = dataclasses.replace(_fmt(byte_tokenizer), cond_dropout=0.5)
    stream = DataStream([Entry(source, 1.0, name="t2i")], fmt, seed=0, global_batch=1)

    def dropped_in_epoch(epoch):
        dropped = set()
        for cursor in range(epoch * n, (epoch + 1) * n):
            index, _ = stream._record_index(0, cursor)
            ids = [i for seg in stream.load(0, cursor)[0] if isinstance(seg, Text) for i in seg.ids]
            if f"shape {index}" not in byte_tokenizer.decode(ids):
                dropped.add(index)
        return frozenset(dropped)

    epochs = [dropped_in_epoch(e) for e in range(3)]
    assert epochs[0] == dropped_in_epoch(0)  # the same record in the same epoch: the same fate
    assert all(0.25 < len(d) / n < 0.75 for d in epochs)
    assert len(set(epochs)) == 3  # a fresh draw each epoch, not the same records forever


def test_shapes_und_cycles_image_questions_captions_and_video_questions(byte_tokenizer):
    from tuna.data.shapes_source import UND_CYCLE, ShapesSource, und_task

    fmt = _fmt(byte_tokenizer)
    source = ShapesSource("und", seed=0, size=64, frames=FRAMES)
    seen: dict[str, list[int]] = {}
    for index in range(4 * len(UND_CYCLE)):
        task, task_index = und_task(index)
        seen.setdefault(task, []).append(task_index)
        segments = source.get(index, fmt)
        visual = next(s for s in segments if isinstance(s, Visual))
        assert not visual.noisy
        assert visual.pixels.shape[1] == (FRAMES if task == "video_qa" else 1), task
        assert any(isinstance(s, Text) and s.supervised for s in segments)
    # every task's samples are taken in order, none twice
    assert {t: sorted(i) for t, i in seen.items()} == {t: list(range(len(i))) for t, i in seen.items()}
    assert set(seen) == {"vqa", "caption", "video_qa"}


def test_shapes_vqa_turns_ask_more_questions_of_each_image_through_the_data_config(byte_tokenizer):
    from tuna.config import get_preset
    from tuna.data.pipeline import build_stream
    from tuna.train.config import DataConfig, MixEntry

    tiny = get_preset("tiny")
    encode = lambda text: byte_tokenizer.encode(text, add_special_tokens=False)  # noqa: E731

    def first_vqa_sample(turns: int):
        data = DataConfig(mixture=(MixEntry("und", 1.0),), global_batch=1, micro_batch=1, pack_len=None,
                          image_size=64, shapes_size=64, video_frames=FRAMES, shapes_vqa_turns=turns)  # fmt: skip
        (batch,), _, _ = build_stream(
            data.mixture, data, encode, tiny.tokens, tiny.vae, seed=0
        ).micro_batches(0, [0], 1)
        (samples,) = batch
        return samples

    one, several = first_vqa_sample(1), first_vqa_sample(6)
    answers = lambda segs: [s.ids for s in segs if isinstance(s, Text) and s.supervised]  # noqa: E731
    assert len(answers(one)) == 1 < len(answers(several))
    assert answers(several)[0] == answers(one)[0]  # the balanced first question is unchanged
    assert sum(isinstance(s, Visual) for s in several) == 1  # one image, encoded once, for every question


def _same_samples(a, b) -> bool:
    """Two lists of samples (lists of segments) hold the same texts and the same media."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if [type(s) for s in x] != [type(s) for s in y]:
            return False
        for s, t in zip(x, y):
            if isinstance(s, Text) and (s.ids != t.ids or s.supervised != t.supervised):
                return False
            if isinstance(s, Visual) and (s.noisy != t.noisy or not torch.equal(s.pixels, t.pixels)):
                return False
    return True


@pytest.mark.parametrize("workers", [0, 2])
def test_prefetched_steps_are_the_steps_loaded_in_process(dataset, workers):
    # Loading moves to worker processes; which samples each step holds, the records read and skipped
    # (bad ones included), and the data position a checkpoint saves must not change.
    from tuna.config import get_preset
    from tuna.data.pipeline import build_stream
    from tuna.data.prefetch import prefetched_steps
    from tuna.tokenizer import small_tokenizer

    cfg = _cfg(dataset, max_bad_fraction=0.5)
    tokenizer = small_tokenizer()
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    tiny = get_preset("tiny")

    def stream():
        return build_stream(cfg.data.mixture, cfg.data, encode, tiny.tokens, tiny.vae, seed=3)

    reference, expected = stream(), []
    reference.micro_batches(0, [0, 1], 8)  # a resumed run: it starts from the position after steps 0–1
    reference.micro_batches(1, [0, 1], 8)
    start = reference.state.to_dict()
    for step in range(2, 7):
        batches, read, bad = reference.micro_batches(step, [1], 8)
        expected.append(
            (batches, read, bad, list(reference.state.cursors), list(reference.state.bad_by_source))
        )
    assert sum(e[2] for e in expected) > 0, "the steps must include bad records"

    ahead = stream()
    ahead.load_state(start)
    loaded = prefetched_steps(ahead, 2, 7, [1], 8, workers)
    for step, (batches, read, bad, cursors, bad_by_source) in zip(range(2, 7), expected):
        got = next(loaded)
        ahead.consume(got)
        assert got.step == step and (got.read, got.bad) == (read, bad)
        assert all(_same_samples(g, e) for g, e in zip(got.batches, batches)) and len(got.batches) == 1
        assert ahead.state.cursors == cursors and ahead.state.bad_by_source == bad_by_source
    assert next(loaded, None) is None


def test_training_with_loading_workers_equals_training_without(dataset, tmp_path):
    from tuna.train.loop import train

    rows = {}
    for workers in (0, 2):
        cfg = _cfg(dataset, max_bad_fraction=0.5, workers=workers)
        rows[workers] = train(dataclasses.replace(cfg, save_every=2), tmp_path / f"w{workers}")
    assert [r["loss"] for r in rows[0]] == [r["loss"] for r in rows[2]]
    assert rows[0][-1]["bad_records"] == rows[2][-1]["bad_records"] > 0
    saved = [torch.load(tmp_path / f"w{w}" / "checkpoints" / "step_00000002.pt", weights_only=True)["data"]
             for w in (0, 2)]  # fmt: skip
    assert saved[0] == saved[1]
