"""Image question answering: six question types, each with answers balanced over its answer space."""

from __future__ import annotations

from collections.abc import Callable
from itertools import permutations

from tuna.data.shapes import palette, text
from tuna.data.shapes.compose import compose, distractor_wants, random_scene
from tuna.data.shapes.context import Ctx
from tuna.data.shapes.geometry import scene_relations
from tuna.data.shapes.placement import Want
from tuna.data.shapes.render import render
from tuna.data.shapes.samples import QAPair, VQASample, with_extra_turns
from tuna.data.shapes.scene import Scene

KINDS: tuple[str, ...] = ("existence", "count", "color", "shape", "position", "describe")
COUNTS: tuple[str, ...] = ("1", "2", "3", "4")
SHAPE_ONLY_RATE = 0.3  # share of existence questions that name only a shape
EXTRA_KINDS = KINDS  # kinds the extra (unbalanced) turns are drawn from


# --- question wording -------------------------------------------------------------------------------


def existence_qa(ctx: Ctx, phrase: str, shape_only: bool, answer: str) -> QAPair:
    key = "existence_shape" if shape_only else "existence_combo"
    field = "a_shape" if shape_only else "a_obj"
    return QAPair(
        ctx.choice(text.QUESTION_TEMPLATES[key]).format(**{field: text.with_article(phrase)}),
        answer,
        "existence",
        phrase,
    )


def count_qa(ctx: Ctx, shape: str, n: int) -> QAPair:
    return QAPair(ctx.choice(text.QUESTION_TEMPLATES["count"]).format(shape=shape), str(n), "count", shape)


def color_qa(ctx: Ctx, shape: str, color: str) -> QAPair:
    return QAPair(ctx.choice(text.QUESTION_TEMPLATES["color"]).format(shape=shape), color, "color", shape)


def shape_qa(ctx: Ctx, color: str, shape: str) -> QAPair:
    return QAPair(ctx.choice(text.QUESTION_TEMPLATES["shape"]).format(color=color), shape, "shape", color)


def position_qa(ctx: Ctx, a: str, b: str, relation: str) -> QAPair:
    q = ctx.choice(text.QUESTION_TEMPLATES["position"]).format(a=a, b=b)
    return QAPair(q, text.RELATION_ANSWERS[relation], "position", f"{a} | {b}")


def describe_qa(ctx: Ctx, scene: Scene) -> QAPair:
    return QAPair(ctx.choice(text.QUESTION_TEMPLATES["describe"]), text.caption(scene, ctx.rng), "describe")


# --- balanced primary questions: the scene is built around the answer -------------------------------


def _stride() -> int:
    return len(KINDS)


def _existence(ctx: Ctx) -> tuple[Scene, QAPair]:
    answer = ctx.balanced(("yes", "no"), _stride())
    scene = random_scene(ctx)
    shape_only = ctx.rng.random() < SHAPE_ONLY_RATE
    present_shapes = {o.shape for o in scene.objects}
    if answer == "yes":
        obj = ctx.choice(scene.objects)
        return scene, existence_qa(ctx, obj.shape if shape_only else obj.name, shape_only, answer)
    absent_shapes = [s for s in palette.SHAPES if s not in present_shapes]
    if shape_only and absent_shapes:
        return scene, existence_qa(ctx, ctx.choice(absent_shapes), True, answer)
    color, shape = ctx.combo(exclude=[o.combo for o in scene.objects])
    return scene, existence_qa(ctx, f"{color} {shape}", False, answer)


def _count(ctx: Ctx) -> tuple[Scene, QAPair]:
    n = int(ctx.balanced(COUNTS, _stride()))
    shape = ctx.choice(palette.SHAPES)
    wants = [Want(shape, ctx.combo(shape=shape)[0], ctx.size()) for _ in range(n)]
    k = int(ctx.rng.integers(0, palette.MAX_OBJECTS - n + 1))
    scene = compose(ctx, wants, distractor_wants(ctx, k, lambda c: c[1] != shape))
    return scene, count_qa(ctx, shape, n)


def _color(ctx: Ctx) -> tuple[Scene, QAPair]:
    color = ctx.balanced(tuple(palette.COLORS), _stride())
    shape = ctx.combo(color=color)[1]
    k = int(ctx.rng.integers(0, palette.MAX_OBJECTS))
    scene = compose(ctx, [Want(shape, color, ctx.size())], distractor_wants(ctx, k, lambda c: c[1] != shape))
    return scene, color_qa(ctx, shape, color)


def _shape(ctx: Ctx) -> tuple[Scene, QAPair]:
    shape = ctx.balanced(palette.SHAPES, _stride())
    color = ctx.combo(shape=shape)[0]
    k = int(ctx.rng.integers(0, palette.MAX_OBJECTS))
    scene = compose(ctx, [Want(shape, color, ctx.size())], distractor_wants(ctx, k, lambda c: c[0] != color))
    return scene, shape_qa(ctx, color, shape)


def _position(ctx: Ctx) -> tuple[Scene, QAPair]:
    relation = ctx.balanced(palette.RELATIONS, _stride())
    a = ctx.combo()
    b = ctx.combo(exclude=[a])
    h, w = ctx.height, ctx.width
    wants = [Want(a[1], a[0], ctx.size()), Want(b[1], b[0], ctx.size())]
    k = int(ctx.rng.integers(0, palette.MAX_OBJECTS - 1))
    scene = compose(
        ctx,
        wants,
        distractor_wants(ctx, k, lambda c: c not in (a, b)),
        accept=lambda objs: scene_relations(objs[0], objs[1], h, w) == {relation},
    )
    return scene, position_qa(ctx, f"{a[0]} {a[1]}", f"{b[0]} {b[1]}", relation)


def _describe(ctx: Ctx) -> tuple[Scene, QAPair]:
    scene = random_scene(ctx)
    return scene, describe_qa(ctx, scene)


BUILDERS: dict[str, Callable[[Ctx], tuple[Scene, QAPair]]] = {
    "existence": _existence,
    "count": _count,
    "color": _color,
    "shape": _shape,
    "position": _position,
    "describe": _describe,
}


# --- extra turns: any true question about a given scene ----------------------------------------------


def derive_qa(ctx: Ctx, scene: Scene, kind: str) -> QAPair | None:
    """A question of `kind` whose answer `scene` determines unambiguously, or None if there is none."""
    objs = scene.objects
    if kind == "existence":
        if ctx.rng.integers(2) and objs:
            return existence_qa(ctx, ctx.choice(objs).name, False, "yes")
        absent = [c for c in palette.allowed_combos(ctx.split) if c not in {o.combo for o in objs}]
        return existence_qa(ctx, "{} {}".format(*ctx.choice(absent)), False, "no")
    if kind == "count":
        shape = ctx.choice(palette.SHAPES)
        return count_qa(ctx, shape, scene.count(shape=shape))
    if kind == "color":
        unique = [o for o in objs if scene.count(shape=o.shape) == 1]
        return color_qa(ctx, (o := ctx.choice(unique)).shape, o.color) if unique else None
    if kind == "shape":
        unique = [o for o in objs if scene.count(color=o.color) == 1]
        return shape_qa(ctx, (o := ctx.choice(unique)).color, o.shape) if unique else None
    if kind == "position":
        pairs = []
        for a, b in permutations([o for o in objs if scene.count(o.shape, o.color) == 1], 2):
            rel = scene_relations(a, b, scene.height, scene.width)
            if len(rel) == 1:
                pairs.append((a, b, next(iter(rel))))
        if not pairs:
            return None
        a, b, rel = ctx.choice(pairs)
        return position_qa(ctx, a.name, b.name, rel)
    if kind == "describe":
        return describe_qa(ctx, scene)
    raise ValueError(f"unknown VQA kind {kind!r}; expected one of {KINDS}")


def make_vqa(ctx: Ctx, turns: int = 1) -> VQASample:
    kind = KINDS[ctx.index % len(KINDS)]
    scene, first = BUILDERS[kind](ctx)
    qa = with_extra_turns(first, turns, lambda: derive_qa(ctx, scene, ctx.choice(EXTRA_KINDS)))
    return VQASample(render(scene, ctx.antialias), scene, qa)
