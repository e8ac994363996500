"""Scene builders shared by the task generators: required objects plus random distractors."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tuna.data.shapes import palette
from tuna.data.shapes.context import Ctx
from tuna.data.shapes.placement import Want, place
from tuna.data.shapes.scene import Scene, SceneObject

Combo = tuple[str, str]  # (colour, shape)
COMPOSE_ATTEMPTS = 10


def distractor_wants(ctx: Ctx, count: int, ok: Callable[[Combo], bool]) -> list[Want]:
    pool = [c for c in palette.allowed_combos(ctx.split) if ok(c)]
    if count and not pool:
        raise ValueError("no colour-shape combination is allowed for the distractors")
    return [Want(shape, color, ctx.size()) for color, shape in (ctx.choice(pool) for _ in range(count))]


def compose(
    ctx: Ctx,
    wants: Sequence[Want],
    distractors: Sequence[Want] = (),
    accept: Callable[[tuple[SceneObject, ...]], bool] | None = None,
    background: str | None = None,
) -> Scene:
    """Place `wants` (subject to `accept`), then the distractors around them, in a shuffled drawing order.

    The main objects can land where no arrangement of the distractors fits around them (seen: train VQA
    sample 14,734 at 128², the one failure among 1,500 around it); then everything is placed afresh, up
    to COMPOSE_ATTEMPTS times.
    A first attempt that succeeds draws exactly what it always did.
    """
    for attempt in range(COMPOSE_ATTEMPTS):
        main = place(ctx.rng, wants, ctx.height, ctx.width, accept=accept)
        try:
            rest = place(ctx.rng, distractors, ctx.height, ctx.width, existing=main) if distractors else ()
            break
        except RuntimeError:
            if attempt == COMPOSE_ATTEMPTS - 1:
                raise
    objects = list(main + rest)
    ctx.rng.shuffle(objects)
    return Scene(background or ctx.background(), tuple(objects), ctx.height, ctx.width)


def random_scene(ctx: Ctx, low: int = 1, high: int = palette.MAX_OBJECTS, distinct: bool = False) -> Scene:
    """`low`..`high` random objects; with `distinct`, no two share a colour-shape combination."""
    n = int(ctx.rng.integers(low, high + 1))
    pool = list(palette.allowed_combos(ctx.split))
    if distinct:
        combos = [pool[i] for i in ctx.rng.choice(len(pool), size=n, replace=False)]
    else:
        combos = [ctx.choice(pool) for _ in range(n)]
    return compose(ctx, [Want(s, c, ctx.size()) for c, s in combos])
