"""`tuna bench diagnose --task understanding`: answer surprisal agrees with the model's own loss, and the
attribute probes read the object's own cell and separate what is there from what is not."""

import math

import pytest
import torch

from tuna.bench.items import build_items
from tuna.bench.understand import (
    ANSWER_SPACES,
    ATTRIBUTES,
    UnderstandingDiagnosis,
    answer_surprisal,
    object_features,
    probe_accuracy,
    qa_segments,
    surprisal_by_kind,
)
from tuna.data.shapes.world import ShapesWorld, WorldConfig
from tuna.sequence import build_batch

WORLD = WorldConfig(height=64, width=64, frames=5)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from tuna.config import get_preset
    from tuna.model.tuna import TunaModel
    from tuna.pipeline import TunaPipeline
    from tuna.tokenizer import small_tokenizer

    torch.manual_seed(0)
    model = TunaModel(get_preset("tiny"))
    model.init_weights()
    model.tokenizer = small_tokenizer()
    directory = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(directory)
    return TunaPipeline.from_pretrained(directory)


def test_answer_surprisal_is_the_models_own_loss_summed_over_the_answer(pipe):
    items = build_items("vqa", 0, 4, WORLD)[:3] + build_items("video_qa", 0, 1, WORLD)
    together = answer_surprisal(pipe, items, batch_size=3)  # a padded batch, then one
    for item, nats in zip(items, together):
        batch = build_batch([qa_segments(pipe, item)], pipe.cfg.tokens, pipe.cfg.vae)
        with torch.no_grad():
            mean_ce = float(pipe.model(batch)["text"])  # training loss: mean CE over supervised tokens
        answer_tokens = len(pipe.encode(item.answer))
        assert batch.num_supervised_tokens == answer_tokens  # the answer alone is scored, no end token
        assert nats == pytest.approx(mean_ce * answer_tokens, rel=1e-4)
    by_kind, _ = surprisal_by_kind(pipe, items)
    assert sum(count for _, count in by_kind.values()) == sum(it.kind in ANSWER_SPACES for it in items)


def test_scene_size_split_groups_colour_and_shape_answers_by_object_count(pipe):
    items = [it for it in build_items("vqa", 0, 36, WORLD) if it.kind in ("color", "shape", "count")]
    one = [it for it in items if it.kind != "count" and len(it.scene.objects) == 1]
    several = [it for it in items if it.kind != "count" and len(it.scene.objects) > 1]
    assert one and several  # the 36 items hold both sizes, so both groups are checked below
    by_kind, by_size = surprisal_by_kind(pipe, items)
    assert set(by_size) <= {"color", "shape"}  # count answers are not split
    nats = dict(zip(map(id, items), answer_surprisal(pipe, items)))
    for size, group in (("one object", one), ("several", several)):
        counted = sum(by_size[kind][size][1] for kind in by_size if size in by_size[kind])
        assert counted == len(group)
        for kind in ("color", "shape"):
            members = [nats[id(it)] for it in group if it.kind == kind]
            if members:
                assert by_size[kind][size] == (pytest.approx(sum(members) / len(members)), len(members))
    for sizes in by_size.values():  # always one object first, then several
        assert list(sizes) == [size for size in ("one object", "several") if size in sizes]


def _scenes(n):
    return [ShapesWorld(3, "train", WORLD).sample("vqa", i).scene for i in range(n)]


def test_object_features_read_the_objects_own_cell():
    scenes = _scenes(40)
    h = w = 4
    latents = torch.randn(len(scenes), 6, 1, h, w)
    tokens = torch.randn(len(scenes), h * w, 8)
    for i, scene in enumerate(scenes):  # write each object's shape, one-hot, into its cell's token
        for obj in scene.objects:
            row, col = min(int(obj.y * h), h - 1), min(int(obj.x * w), w - 1)
            tokens[i, row * w + col, :3] = 10 * torch.nn.functional.one_hot(
                torch.tensor(ATTRIBUTES["shape"].index(obj.shape)), 3
            )
    feats, labels = object_features(latents, {"encoder": tokens}, scenes)
    n = sum(len(s.objects) for s in scenes)
    assert feats["latent"].shape == (n, 6 * 9) and feats["encoder"].shape == (n, 8)
    assert labels["shape"].shape == labels["color"].shape == (n,)
    # two objects may share a cell (then the later one's shape is written): nearly every token is exact
    exact = (feats["encoder"][:, :3].argmax(1) == labels["shape"]).float().mean()
    assert exact > 0.9


def test_probes_find_what_is_there_and_not_what_is_not():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 16, generator=g)
    linear = (x[:, 0] + x[:, 1] > 0).long()
    xor = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()  # not linearly separable
    noise = torch.randint(0, 3, (600,), generator=g)
    split = lambda y: (x[:400], y[:400], x[400:], y[400:])  # noqa: E731
    assert probe_accuracy(*split(linear)) > 0.95
    xor_split = (x[:400, :4], xor[:400], x[400:, :4], xor[400:])  # two informative features, two noise
    assert probe_accuracy(*xor_split) < 0.7 < 0.9 < probe_accuracy(*xor_split, hidden=64)
    assert probe_accuracy(*split(noise)) < 0.5


def test_table_names_each_kind_with_its_chance():
    table = UnderstandingDiagnosis(
        {"vqa": {"shape": (1.1, 5)}},
        {"shape": {"encoder": 0.5}},
        (10, 4),
        {"vqa": {"shape": {"one object": (0.2, 2), "several": (1.4, 3)}}},
    ).table()
    assert f"chance {math.log(3):.3f}" in table and "encoder 0.500" in table and "(chance 0.333)" in table
    assert "shape by scene size: one object 0.200 (2)  several 1.400 (3)" in table


def test_diagnose_understanding_runs_on_a_real_checkpoint(pipe, tmp_path, capsys):
    from tuna.cli import main

    pipe.model.save_pretrained(tmp_path / "ckpt")
    argv = ["bench", "diagnose", "--task", "understanding", "--model", str(tmp_path / "ckpt"),
            "--n", "3", "--size", "64", "--frames", "5"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "vqa: answer surprisal" in out and "attribute probes" in out and "video_qa: answer surprisal" in out
    )
    assert "shape  latent (MLP)" in out and "untrained encoder" in out
    assert "by scene size:" in out
