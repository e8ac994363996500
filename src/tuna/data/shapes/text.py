"""Every text template of the shapes world, and the small grammar helpers they need.

Templates are picked at random per sample (varied wording), but the *facts* in a text always come from the
scene. The detector-side parser (`tuna.bench.normalize`) must understand every caption template here; a
test renders each one and parses it back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from tuna.data.shapes.scene import Scene, SceneObject

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

# Gold answers for the relative-position question, one word per relation.
RELATION_ANSWERS = {"left of": "left", "right of": "right", "above": "above", "below": "below"}
# How a motion direction reads in a sentence ("moves to the left", "moves up").
DIRECTION_PHRASES = {
    "left": ("to the left", "left", "leftwards"),
    "right": ("to the right", "right", "rightwards"),
    "up": ("up", "upwards", "upward"),
    "down": ("down", "downwards", "downward"),
}

CAPTION_TEMPLATES = (
    "{Objects} on a {bg} background.",
    "A {bg} background with {objects}.",
    "An image of {objects} against a {bg} background.",
    "There {be} {objects} on a {bg} background.",
    "{Objects}, on a plain {bg} background.",
)

PROMPT_TEMPLATES = {
    "single_object": ("a photo of {a_s1}", "an image of {a_s1}", "{a_s1}", "a picture of a single {s1}"),
    "two_object": ("a photo of {a_s1} and {a_s2}", "{a_s1} and {a_s2}", "an image with {a_s1} and {a_s2}"),
    "counting": ("a photo of {n} {s1}s", "{n} {s1}s", "an image of exactly {n} {s1}s"),
    "colors": ("a photo of {a_c1_s1}", "{a_c1_s1}", "an image of {a_c1_s1}"),
    "position": ("a photo of {a_s1} {rel} {a_s2}", "{a_s1} {rel} {a_s2}", "an image of {a_s1} {rel} {a_s2}"),
    "color_attr": (
        "a photo of {a_c1_s1} and {a_c2_s2}",
        "{a_c1_s1} and {a_c2_s2}",
        "an image of {a_c1_s1} and {a_c2_s2}",
    ),
}
PROMPT_BACKGROUND_SUFFIX = ", on a {bg} background"

QUESTION_TEMPLATES = {
    "existence_combo": (
        "Is there {a_obj} in the image?",
        "Does the image contain {a_obj}?",
        "Can you see {a_obj}?",
    ),
    "existence_shape": ("Is there {a_shape}?", "Does the image contain {a_shape}?"),
    "count": ("How many {shape}s are there?", "How many {shape}s are in the image?", "Count the {shape}s."),
    "color": (
        "What colour is the {shape}?",
        "What is the color of the {shape}?",
        "Which colour does the {shape} have?",
    ),
    "shape": (
        "What shape is the {color} object?",
        "Which shape is {color}?",
        "What is the shape of the {color} object?",
    ),
    "position": (
        "Where is the {a} relative to the {b}?",
        "Is the {a} left of, right of, above or below the {b}?",
        "Where is the {a} compared with the {b}?",
    ),
    "describe": ("Describe the image.", "What do you see?", "Give a short description of this picture."),
}

EDIT_TEMPLATES = {
    "add": ("Add {a_new}.", "Put {a_new} in the image.", "Insert {a_new}."),
    "remove": ("Remove the {obj}.", "Delete the {obj}.", "Take away the {obj}."),
    "recolor": (
        "Make the {obj} {color}.",
        "Change the colour of the {obj} to {color}.",
        "Recolour the {obj} {color}.",
    ),
    "replace": (
        "Replace the {obj} with {a_new}.",
        "Turn the {obj} into {a_new}.",
        "Change the {obj} into {a_new}.",
    ),
    "move": ("Move the {obj} {dir}.", "Shift the {obj} {dir}.", "Slide the {obj} {dir}."),
    "background": (
        "Change the background to {bg}.",
        "Make the background {bg}.",
        "Replace the background with a {bg} one.",
    ),
}

VIDEO_QUESTION_TEMPLATES = {
    "direction": ("Which direction is the {obj} moving?", "In which direction does the {obj} move?"),
    "moving_yes_no": ("Is the {obj} moving {dir}?", "Does the {obj} move {dir}?"),
    "color": ("What colour is the shape that moves {dir}?", "Which colour is the object moving {dir}?"),
    "shape": ("What shape moves {dir}?", "Which shape is moving {dir}?"),
}


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def number_word(n: int) -> str:
    if not 0 <= n < len(NUMBER_WORDS):
        raise ValueError(f"no number word for {n}")
    return NUMBER_WORDS[n]


def join_list(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if not items:
        raise ValueError("cannot join an empty list")
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def object_phrases(objects: Sequence[SceneObject], with_size: bool) -> list[str]:
    """Group identical objects: ['two small red circles', 'a large blue square']."""
    keys = [((o.size + " ") if with_size else "") + f"{o.color} {o.shape}" for o in objects]
    return [with_article(k) if n == 1 else f"{number_word(n)} {k}s" for k, n in Counter(keys).items()]


def caption(scene: Scene, rng: np.random.Generator) -> str:
    if not scene.objects:
        return f"An empty {scene.background} background."
    phrases = object_phrases(scene.objects, with_size=bool(rng.integers(2)))
    objects = join_list(phrases)
    plural = len(scene.objects) > 1
    text = pick(rng, CAPTION_TEMPLATES).format(
        Objects=objects[0].upper() + objects[1:],
        objects=objects,
        bg=scene.background,
        be="are" if plural else "is",
    )
    return text


def direction_phrase(direction: str, rng: np.random.Generator) -> str:
    return pick(rng, DIRECTION_PHRASES[direction])


def video_caption(scene: Scene, directions: Sequence[str], rng: np.random.Generator) -> str:
    """'A red circle moves to the left while a blue square moves up, on a white background.'"""
    verb = pick(rng, ("moves", "is moving", "slides"))
    parts = [
        f"{with_article(o.name)} {verb} {direction_phrase(d, rng)}" for o, d in zip(scene.objects, directions)
    ]
    body = join_list(parts)
    if len(parts) == 2 and rng.integers(2):
        body = f"{parts[0]} while {parts[1]}"
    return f"{body[0].upper()}{body[1:]}, on a {scene.background} background."
