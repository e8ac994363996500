"""Answer normalisation and matching, and caption attribute parsing (rules documented in docs/shapes-world.md).

An answer is correct when the set of canonical answers of the question's type that it mentions is exactly
{gold}: "Yes, there is." → {yes}; "It is red." → {red}; "red or blue" → {red, blue} (wrong: hedging).
"""

from __future__ import annotations

import re
from collections import Counter

from tuna.data.shapes import palette
from tuna.data.shapes.text import NUMBER_WORDS

_TOKEN = re.compile(r"[a-z]+|\d+")

# Spelling variants folded before anything else.
SPELLING = {"colour": "color", "colours": "colors", "grey": "gray", "centre": "center"}
# Number words → digits, so "three" and "3" agree.
NUMBERS = {w: str(i) for i, w in enumerate(NUMBER_WORDS)} | {"no": "0", "none": "0"}

YES_NO = {
    "yes": "yes",
    "yeah": "yes",
    "yep": "yes",
    "true": "yes",
    "no": "no",
    "not": "no",
    "nope": "no",
    "false": "no",
}
POSITION = {
    "left": "left",
    "right": "right",
    "above": "above",
    "over": "above",
    "up": "above",
    "top": "above",
    "below": "below",
    "under": "below",
    "beneath": "below",
    "underneath": "below",
    "down": "below",
    "bottom": "below",
}
DIRECTION = {
    "left": "left",
    "leftward": "left",
    "leftwards": "left",
    "right": "right",
    "rightward": "right",
    "rightwards": "right",
    "up": "up",
    "upward": "up",
    "upwards": "up",
    "down": "down",
    "downward": "down",
    "downwards": "down",
}
SHAPE_WORDS = {s: s for s in palette.SHAPES} | {s + "s": s for s in palette.SHAPES}
COLOR_WORDS = {c: c for c in palette.COLORS}

# Question type → word → canonical answer. Counts are handled separately (digits).
VOCABULARIES: dict[str, dict[str, str]] = {
    "existence": YES_NO,
    "moving_yes_no": YES_NO,
    "color": COLOR_WORDS,
    "shape": SHAPE_WORDS,
    "position": POSITION,
    "direction": DIRECTION,
}
COUNT_KINDS = ("count",)


def tokens(text: str) -> list[str]:
    """Lower-case words and digit runs, spelling variants folded; punctuation dropped."""
    return [SPELLING.get(t, t) for t in _TOKEN.findall(text.lower())]


def mentioned(answer: str, kind: str) -> set[str]:
    """Canonical answers of question type `kind` that `answer` mentions."""
    words = tokens(answer)
    if kind in COUNT_KINDS:
        return {NUMBERS.get(t, t) for t in words if t.isdigit() or t in NUMBERS}
    if kind not in VOCABULARIES:
        raise ValueError(f"no answer vocabulary for question type {kind!r}")
    vocab = VOCABULARIES[kind]
    return {vocab[t] for t in words if t in vocab}


def is_correct(answer: str, gold: str, kind: str) -> bool:
    return mentioned(answer, kind) == {gold}


def answer_space(kind: str) -> tuple[str, ...]:
    """The distinct canonical answers of a multiple-choice question type (for chance levels)."""
    if kind == "count":
        return tuple(str(i) for i in range(1, palette.MAX_OBJECTS + 1))
    return tuple(sorted(set(VOCABULARIES[kind].values())))


# --- captions ------------------------------------------------------------------------------------------

LOOKBACK = 3  # words before a shape word searched for its colour and number ("two small red circles")
_STOP = {"and", "with", "while"}


def parse_caption(text: str) -> tuple[Counter[tuple[str | None, str]], str | None]:
    """Objects mentioned as (colour or None, shape) with multiplicity, and the background colour if named."""
    words = tokens(text)
    objects: Counter[tuple[str | None, str]] = Counter()
    background = None
    for i, word in enumerate(words):
        if word in SHAPE_WORDS:
            color, count = None, None
            for prev in reversed(words[max(0, i - LOOKBACK) : i]):
                if prev in _STOP or prev in SHAPE_WORDS:
                    break
                if color is None and prev in palette.COLORS:
                    color = prev
                if count is None and (prev.isdigit() or prev in NUMBER_WORDS):
                    count = int(NUMBERS.get(prev, prev))
            plural = word.endswith("s")
            objects[(color, SHAPE_WORDS[word])] += count if count is not None else (2 if plural else 1)
        elif word == "background" and background is None:
            for prev in reversed(words[max(0, i - 2) : i]):
                if prev in palette.BACKGROUNDS or prev in palette.COLORS:
                    background = prev
                    break
    return objects, background


def caption_f1(text: str, objects: Counter[tuple[str | None, str]], background: str) -> float:
    """F1 between the (colour, shape) multiset + background a text mentions and the true ones."""
    pred_objs, pred_bg = parse_caption(text)
    pred = Counter({("object", *k): v for k, v in pred_objs.items()})
    gold = Counter({("object", *k): v for k, v in objects.items()})
    if pred_bg is not None:
        pred[("background", pred_bg)] += 1
    gold[("background", background)] += 1
    hits = sum((pred & gold).values())
    total = sum(pred.values()) + sum(gold.values())
    return 2 * hits / total if total else 1.0
