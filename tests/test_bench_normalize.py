from collections import Counter

import pytest

from tuna.bench.normalize import caption_f1, is_correct, mentioned, parse_caption
from tuna.data.shapes import ShapesWorld


@pytest.mark.parametrize(
    "answer,gold,kind,ok",
    [
        ("Yes, there is.", "yes", "existence", True),
        ("no", "yes", "existence", False),
        ("There are three circles.", "3", "count", True),
        ("3", "3", "count", True),
        ("two or three", "3", "count", False),
        ("It is RED!", "red", "color", True),
        ("The colour is red or blue", "red", "color", False),
        ("A circle.", "circle", "shape", True),
        ("circles", "circle", "shape", True),
        ("To the left of it", "left", "position", True),
        ("It is on top", "above", "position", True),
        ("underneath", "below", "position", True),
        ("It moves upwards.", "up", "direction", True),
        ("rightwards", "right", "direction", True),
        ("", "yes", "existence", False),
    ],
)
def test_answer_matching(answer, gold, kind, ok):
    assert is_correct(answer, gold, kind) is ok


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError):
        mentioned("red", "smell")


def test_caption_parser_reads_every_world_caption():
    world = ShapesWorld(0, "train")
    for s in world.samples("caption", stop=80):
        objs, bg = parse_caption(s.caption)
        assert objs == Counter((o.color, o.shape) for o in s.scene.objects), s.caption
        assert bg == s.scene.background, s.caption
    for s in world.samples("video", stop=20):
        objs, bg = parse_caption(s.caption)
        assert objs == Counter(o.combo for o in s.video.scene.objects), s.caption


def test_caption_f1_partial_credit():
    gold = Counter({("red", "circle"): 1, ("blue", "square"): 1})
    assert caption_f1("A red circle and a blue square on a white background.", gold, "white") == 1.0
    # 2 of 3 gold attributes named, nothing wrong: P = 1, R = 2/3
    assert caption_f1("A red circle on a white background.", gold, "white") == pytest.approx(0.8)
    assert caption_f1("nothing here", gold, "white") == 0.0
