"""Videos of 1+4k frames in which each object moves straight in its own named direction; T2V and video QA."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image

from tuna.data.shapes import palette, text
from tuna.data.shapes.context import Ctx
from tuna.data.shapes.placement import Want, place
from tuna.data.shapes.render import render
from tuna.data.shapes.samples import QAPair, VideoQASample, VideoSample, VideoScene, with_extra_turns
from tuna.data.shapes.scene import Scene

MAX_MOVERS = 3  # distinct directions per video, so "the shape moving left" names one object
QA_KINDS: tuple[str, ...] = ("direction", "moving_yes_no", "color", "shape")


def frame_scenes(video: VideoScene) -> list[Scene]:
    s = video.scene
    out = []
    for i in range(video.frames):
        t = i / (video.frames - 1) if video.frames > 1 else 0.0
        objs = []
        for o, d in zip(s.objects, video.directions):
            vx, vy = palette.DIRECTION_VECTORS[d]
            objs.append(
                replace(
                    o, x=o.x + vx * video.distance * t / s.width, y=o.y + vy * video.distance * t / s.height
                )
            )
        out.append(s.with_objects(objs))
    return out


def render_video(video: VideoScene, antialias: bool = True) -> list[Image.Image]:
    return [render(s, antialias) for s in frame_scenes(video)]


def make_video_scene(
    ctx: Ctx, combos: list[tuple[str, str]], directions: list[str], background: str | None = None
) -> VideoScene:
    distance = palette.MOTION_DISTANCE * min(ctx.height, ctx.width)
    wants = []
    for (color, shape), d in zip(combos, directions):
        vx, vy = palette.DIRECTION_VECTORS[d]
        wants.append(Want(shape, color, ctx.size(), (vx * distance, vy * distance)))
    objects = place(ctx.rng, wants, ctx.height, ctx.width, frames=ctx.frames)
    scene = Scene(background or ctx.background(), objects, ctx.height, ctx.width)
    return VideoScene(scene, tuple(directions), ctx.frames, distance)


def _random_movers(ctx: Ctx, n: int, first: tuple[str, str] | None = None, first_dir: str | None = None):
    """n distinct combos and n distinct directions, optionally fixing the first mover."""
    combos = [first] if first else []
    while len(combos) < n:
        combos.append(ctx.combo(exclude=combos))
    dirs = [first_dir] if first_dir else []
    rest = [d for d in palette.DIRECTIONS if d not in dirs]
    ctx.rng.shuffle(rest)
    return combos, (dirs + rest)[:n]


def make_video(ctx: Ctx) -> VideoSample:
    n = int(ctx.rng.integers(1, 3))
    combos, dirs = _random_movers(ctx, n)
    video = make_video_scene(ctx, combos, dirs)
    return VideoSample(
        render_video(video, ctx.antialias), text.video_caption(video.scene, dirs, ctx.rng), video
    )


def make_video_qa(ctx: Ctx, turns: int = 1) -> VideoQASample:
    """A video and `turns` questions about it: the first balanced by kind and answer (the benchmark's),
    the rest drawn about any of its movers (each named uniquely: combos and directions are distinct)."""
    kind = QA_KINDS[ctx.index % len(QA_KINDS)]
    stride = len(QA_KINDS)
    n = int(ctx.rng.integers(1, MAX_MOVERS + 1))
    if kind == "direction":
        direction = ctx.balanced(palette.DIRECTIONS, stride)
        combos, dirs = _random_movers(ctx, n, ctx.combo(), direction)
        qa = direction_qa(ctx, combos[0], direction)
    elif kind == "moving_yes_no":
        answer = ctx.balanced(("yes", "no"), stride)
        combos, dirs = _random_movers(ctx, n, ctx.combo(), ctx.choice(palette.DIRECTIONS))
        asked = dirs[0] if answer == "yes" else ctx.choice([d for d in palette.DIRECTIONS if d != dirs[0]])
        qa = moving_qa(ctx, combos[0], asked, answer)
    elif kind in ("color", "shape"):
        if kind == "color":
            color = ctx.balanced(tuple(palette.COLORS), stride)
            first = ctx.combo(color=color)
        else:
            first = ctx.combo(shape=ctx.balanced(palette.SHAPES, stride))
        combos, dirs = _random_movers(ctx, n, first, ctx.choice(palette.DIRECTIONS))
        qa = mover_attribute_qa(ctx, kind, first, dirs[0])
    else:  # unreachable: kind comes from QA_KINDS
        raise ValueError(f"unknown video QA kind {kind!r}")
    video = make_video_scene(ctx, combos, dirs)
    # Extra turns are drawn after the scene, so the first question and the video stay as they were.
    asked = with_extra_turns(qa, turns, lambda: derive_video_qa(ctx, combos, dirs, ctx.choice(QA_KINDS)))
    return VideoQASample(render_video(video, ctx.antialias), video, asked)


def direction_qa(ctx: Ctx, combo: tuple[str, str], direction: str) -> QAPair:
    name = "{} {}".format(*combo)
    question = ctx.choice(text.VIDEO_QUESTION_TEMPLATES["direction"]).format(obj=name)
    return QAPair(question, direction, "direction", topic=name)


def moving_qa(ctx: Ctx, combo: tuple[str, str], asked: str, answer: str) -> QAPair:
    name, words = "{} {}".format(*combo), text.direction_phrase(asked, ctx.rng)
    question = ctx.choice(text.VIDEO_QUESTION_TEMPLATES["moving_yes_no"]).format(obj=name, dir=words)
    return QAPair(question, answer, "moving_yes_no", topic=f"{name} | {asked}")


def mover_attribute_qa(ctx: Ctx, kind: str, combo: tuple[str, str], direction: str) -> QAPair:
    """The colour or shape of the object moving in `direction` (one object per direction)."""
    words = text.direction_phrase(direction, ctx.rng)
    question = ctx.choice(text.VIDEO_QUESTION_TEMPLATES[kind]).format(dir=words)
    return QAPair(question, combo[0] if kind == "color" else combo[1], kind, topic=direction)


def derive_video_qa(ctx: Ctx, combos: list[tuple[str, str]], dirs: list[str], kind: str) -> QAPair:
    """One true question of `kind` about a random mover of the video."""
    i = int(ctx.rng.integers(len(combos)))
    if kind == "direction":
        return direction_qa(ctx, combos[i], dirs[i])
    if kind == "moving_yes_no":
        asked = ctx.choice(palette.DIRECTIONS)
        return moving_qa(ctx, combos[i], asked, "yes" if asked == dirs[i] else "no")
    if kind in ("color", "shape"):
        return mover_attribute_qa(ctx, kind, combos[i], dirs[i])
    raise ValueError(f"unknown video QA kind {kind!r}; expected one of {QA_KINDS}")
