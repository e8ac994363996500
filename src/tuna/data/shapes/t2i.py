"""Text-to-image samples: a GenEval-style prompt per category, its spec, and a ground-truth render."""

from __future__ import annotations

from tuna.data.shapes import palette, text
from tuna.data.shapes.context import Ctx
from tuna.data.shapes.render import render
from tuna.data.shapes.samples import T2ISample
from tuna.data.shapes.spec import CATEGORIES, GenSpec, Relation, Requirement, realise

PROMPT_BACKGROUND_RATE = 0.3  # share of prompts that also name a background (wording variety)


def _colored_pair(ctx: Ctx, force_held_out: bool) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two combos with different colours and different shapes; the first held-out if forced."""
    first = ctx.choice(sorted(palette.HELD_OUT)) if force_held_out else ctx.combo()
    second = ctx.choice(
        [c for c in palette.allowed_combos(ctx.split) if c[0] != first[0] and c[1] != first[1]]
    )
    return (first, second) if ctx.rng.integers(2) else (second, first)


def make_spec(ctx: Ctx, category: str) -> GenSpec:
    shapes = list(palette.SHAPES)
    ctx.rng.shuffle(shapes)
    force = ctx.split != "train" and ctx.rng.random() < palette.HELD_OUT_RATE
    bg = ctx.background() if ctx.rng.random() < PROMPT_BACKGROUND_RATE else None
    if category == "single_object":
        reqs, rel = (Requirement(shapes[0]),), None
    elif category == "two_object":
        reqs, rel = (Requirement(shapes[0]), Requirement(shapes[1])), None
    elif category == "counting":
        reqs, rel = (Requirement(shapes[0], count=int(ctx.rng.integers(2, 5)), exact=True),), None
    elif category == "colors":
        color, shape = ctx.choice(sorted(palette.HELD_OUT)) if force else ctx.combo()
        reqs, rel = (Requirement(shape, color),), None
    elif category == "position":
        reqs = (Requirement(shapes[0]), Requirement(shapes[1]))
        rel = Relation(0, ctx.choice(palette.RELATIONS), 1)
    elif category == "color_attr":
        a, b = _colored_pair(ctx, force)
        reqs, rel = (Requirement(a[1], a[0]), Requirement(b[1], b[0])), None
    else:
        raise ValueError(f"unknown T2I category {category!r}; expected one of {CATEGORIES}")
    return GenSpec(reqs, rel, bg, category)


def prompt_for(spec: GenSpec, ctx: Ctx) -> str:
    """Words for a spec produced by `make_spec` (the six categories' shapes of spec)."""
    reqs = spec.objects
    fields = {
        "s1": reqs[0].shape,
        "a_s1": text.with_article(reqs[0].shape),
        "n": text.number_word(reqs[0].count),
    }
    if reqs[0].color:
        fields["a_c1_s1"] = text.with_article(f"{reqs[0].color} {reqs[0].shape}")
    if len(reqs) > 1:
        fields.update(s2=reqs[1].shape, a_s2=text.with_article(reqs[1].shape))
        if reqs[1].color:
            fields["a_c2_s2"] = text.with_article(f"{reqs[1].color} {reqs[1].shape}")
    if spec.relation is not None:
        fields["rel"] = spec.relation.relation
    prompt = ctx.choice(text.PROMPT_TEMPLATES[spec.category]).format(**fields)
    if spec.background is not None:
        prompt += text.PROMPT_BACKGROUND_SUFFIX.format(bg=spec.background)
    return prompt


def make_t2i(ctx: Ctx) -> T2ISample:
    category = CATEGORIES[ctx.index % len(CATEGORIES)]
    spec = make_spec(ctx, category)
    scene = realise(spec, ctx.rng, ctx.height, ctx.width, ctx.split)
    return T2ISample(prompt_for(spec, ctx), spec, render(scene, ctx.antialias), scene)
