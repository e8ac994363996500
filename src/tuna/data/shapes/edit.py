"""Editing triplets (source, instruction, target) for six edit types, ImgEdit-style."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tuna.data.shapes import palette, text
from tuna.data.shapes.compose import random_scene
from tuna.data.shapes.context import Ctx
from tuna.data.shapes.geometry import layout_ok
from tuna.data.shapes.placement import Want, place
from tuna.data.shapes.render import render
from tuna.data.shapes.samples import EditOp, EditSample
from tuna.data.shapes.scene import Scene

KINDS: tuple[str, ...] = ("add", "remove", "recolor", "replace", "move", "background")
ATTEMPTS = 50  # fresh source scenes to try before giving up on an edit that does not fit

Edit = tuple[Scene, EditOp, str] | None  # target, op, instruction; None when this source cannot take the edit


def _add(ctx: Ctx, src: Scene) -> Edit:
    if len(src.objects) >= palette.MAX_OBJECTS:
        return None
    color, shape = ctx.combo(exclude=[o.combo for o in src.objects])
    size = ctx.size()
    try:
        (new,) = place(ctx.rng, [Want(shape, color, size)], src.height, src.width, existing=src.objects)
    except RuntimeError:
        return None
    phrase = text.with_article(f"{size} {color} {shape}" if ctx.rng.integers(2) else f"{color} {shape}")
    instruction = ctx.choice(text.EDIT_TEMPLATES["add"]).format(a_new=phrase)
    return src.with_objects(src.objects + (new,)), EditOp("add", new=new), instruction


def _remove(ctx: Ctx, src: Scene) -> Edit:
    obj = ctx.choice(src.objects)
    target = src.with_objects([o for o in src.objects if o is not obj])
    return target, EditOp("remove", obj=obj), ctx.choice(text.EDIT_TEMPLATES["remove"]).format(obj=obj.name)


def _swap(src: Scene, old, new) -> Scene:
    return src.with_objects([new if o is old else o for o in src.objects])


def _recolor(ctx: Ctx, src: Scene) -> Edit:
    obj = ctx.choice(src.objects)
    color, _ = ctx.combo(exclude=[o.combo for o in src.objects], shape=obj.shape)
    new = replace(obj, color=color)
    instruction = ctx.choice(text.EDIT_TEMPLATES["recolor"]).format(obj=obj.name, color=color)
    return _swap(src, obj, new), EditOp("recolor", obj=obj, new=new), instruction


def _replace(ctx: Ctx, src: Scene) -> Edit:
    obj = ctx.choice(src.objects)
    shapes = [
        s for s in palette.SHAPES if s != obj.shape and (obj.color, s) in palette.allowed_combos(ctx.split)
    ]
    shapes = [s for s in shapes if src.count(s, obj.color) == 0]
    if not shapes:
        return None
    new = replace(obj, shape=ctx.choice(shapes))
    phrase = text.with_article(f"{new.color} {new.shape}" if ctx.rng.integers(2) else new.shape)
    instruction = ctx.choice(text.EDIT_TEMPLATES["replace"]).format(obj=obj.name, a_new=phrase)
    return _swap(src, obj, new), EditOp("replace", obj=obj, new=new), instruction


def _move(ctx: Ctx, src: Scene) -> Edit:
    obj = ctx.choice(src.objects)
    step = palette.EDIT_MOVE_DISTANCE * min(src.height, src.width)
    directions = list(palette.DIRECTIONS)
    ctx.rng.shuffle(directions)
    for direction in directions:
        vx, vy = palette.DIRECTION_VECTORS[direction]
        x, y = obj.x + vx * step / src.width, obj.y + vy * step / src.height
        if not (0 <= x <= 1 and 0 <= y <= 1):
            continue
        new = replace(obj, x=x, y=y)
        target = _swap(src, obj, new)
        if layout_ok(target):
            words = text.direction_phrase(direction, ctx.rng)
            instruction = ctx.choice(text.EDIT_TEMPLATES["move"]).format(obj=obj.name, dir=words)
            return target, EditOp("move", obj=obj, new=new, direction=direction), instruction
    return None


def _background(ctx: Ctx, src: Scene) -> Edit:
    bg = ctx.background(exclude=src.background)
    instruction = ctx.choice(text.EDIT_TEMPLATES["background"]).format(bg=bg)
    return replace(src, background=bg), EditOp("background", background=bg), instruction


EDITS: dict[str, Callable[[Ctx, Scene], Edit]] = {
    "add": _add,
    "remove": _remove,
    "recolor": _recolor,
    "replace": _replace,
    "move": _move,
    "background": _background,
}


def make_edit(ctx: Ctx) -> EditSample:
    kind = KINDS[ctx.index % len(KINDS)]
    for _ in range(ATTEMPTS):
        # Distinct colour-shape combinations, so "the red circle" always names exactly one object.
        src = random_scene(ctx, distinct=True)
        made = EDITS[kind](ctx, src)
        if made is not None:
            target, op, instruction = made
            return EditSample(
                render(src, ctx.antialias), instruction, render(target, ctx.antialias), src, target, op
            )
    raise RuntimeError(f"could not make a {kind!r} edit in {ATTEMPTS} attempts (sample {ctx.index})")
