"""The scorer is honest: truth scores ~1, uninformative outputs score at or below chance."""

import pytest

from tuna.bench import BENCH_TASKS, BenchConfig, TunaTasks, build_items, make_control, run_bench
from tuna.bench.controls import AnswerKey, TruthControl
from tuna.bench.normalize import answer_space
from tuna.data.shapes import WorldConfig

N = 72  # 12 per T2I category / VQA type / edit type, 18 per video QA type
CFG = BenchConfig(height=128, width=128, frames=9)
MC_KINDS = {
    "vqa": ("existence", "count", "color", "shape", "position"),
    "video_qa": ("direction", "moving_yes_no", "color", "shape"),
}


@pytest.fixture(scope="module")
def items():
    world = WorldConfig(frames=9)
    return {task: build_items(task, 0, N, world) for task in BENCH_TASKS}


@pytest.fixture(scope="module")
def scores(items):
    every = [it for v in items.values() for it in v]
    out = {}
    for name in ("ground-truth", "blank", "noise", "shuffled"):
        control = make_control(name, every, seed=0)
        assert isinstance(control, TunaTasks)
        out[name] = {t: r.scores for t, r in run_bench(control, items, CFG).items()}
    return out


def test_ground_truth_is_perfect(scores):
    for task, cats in scores["ground-truth"].items():
        for cat, value in cats.items():
            assert value >= 0.99, (task, cat, value)


@pytest.mark.parametrize("control", ["blank", "noise"])
def test_blank_and_noise_are_at_or_below_chance(scores, control):
    s = scores[control]
    assert s["t2i"]["overall"] <= 0.05
    assert s["edit"]["overall"] <= 0.05 and s["t2v"]["overall"] <= 0.05
    for task, kinds in MC_KINDS.items():
        for kind in kinds:
            chance = 1 / len(answer_space(kind))
            assert s[task][kind] <= chance + 0.05, (control, task, kind, s[task][kind])
    assert s["vqa"]["caption_f1"] <= 0.05


def test_shuffled_is_far_below_truth(scores):
    s = scores["shuffled"]
    assert s["t2i"]["overall"] <= 0.25
    for task in BENCH_TASKS:
        assert s[task]["overall"] <= 0.5, (task, s[task])


class _Identity(TruthControl):
    """Returns the source image unchanged: preservation is perfect, but no edit happened."""

    def edit(self, items, seed):
        return [im for im, _ in items]


def test_unchanged_image_is_no_edit(items):
    result = run_bench(_Identity(AnswerKey.from_items(items["edit"])), {"edit": items["edit"]}, CFG)["edit"]
    assert result.scores["preservation"] >= 0.99
    assert result.scores["overall"] == 0.0
