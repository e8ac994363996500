"""What a generation prompt asks for (GenEval-style metadata), and how to realise it as a scene.

The same `GenSpec` drives the ground-truth renders and the scorer, and is the JSONL schema users write for
`tuna bench shapes --prompts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tuna.data.shapes import palette
from tuna.data.shapes.geometry import scene_relations
from tuna.data.shapes.placement import Want, place
from tuna.data.shapes.scene import Scene, SceneObject

CATEGORIES: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


@dataclass(frozen=True)
class Requirement:
    """At least `count` objects of `shape` (and `color`, if given); exactly `count` if `exact`."""

    shape: str
    color: str | None = None
    count: int = 1
    exact: bool = False

    def __post_init__(self) -> None:
        if self.shape not in palette.SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {palette.SHAPES}")
        if self.color is not None and self.color not in palette.COLORS:
            raise ValueError(f"unknown colour {self.color!r}; expected one of {tuple(palette.COLORS)}")
        if not 1 <= self.count <= palette.MAX_OBJECTS:
            raise ValueError(f"count {self.count} must be in 1..{palette.MAX_OBJECTS}")

    def matches(self, shape: str, color: str) -> bool:
        return shape == self.shape and self.color in (None, color)


@dataclass(frozen=True)
class Relation:
    """Some object matching requirement `a` is `relation` some object matching requirement `b`."""

    a: int
    relation: str
    b: int

    def __post_init__(self) -> None:
        if self.relation not in palette.RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r}; expected one of {palette.RELATIONS}")


@dataclass(frozen=True)
class GenSpec:
    objects: tuple[Requirement, ...]
    relation: Relation | None = None
    background: str | None = None  # honoured by ground-truth renders; not scored (GenEval ignores it)
    category: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        if not self.objects:
            raise ValueError("a generation spec needs at least one object requirement")
        if sum(r.count for r in self.objects) > palette.MAX_OBJECTS:
            raise ValueError(f"a spec may ask for at most {palette.MAX_OBJECTS} objects in total")
        if self.background is not None and self.background not in palette.BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}")
        rel = self.relation
        if rel is not None:
            if not (0 <= rel.a < len(self.objects) and 0 <= rel.b < len(self.objects)) or rel.a == rel.b:
                raise ValueError(f"relation {rel} must name two different requirements by index")

    @property
    def combos(self) -> tuple[tuple[str, str], ...]:
        return tuple((r.color, r.shape) for r in self.objects if r.color is not None)

    @property
    def held_out(self) -> bool:
        """Whether the prompt names a held-out colour-shape combination."""
        return any(c in palette.HELD_OUT for c in self.combos)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "category": self.category,
            "objects": [
                {"shape": r.shape, "color": r.color, "count": r.count, "exact": r.exact} for r in self.objects
            ],
        }
        if self.relation is not None:
            out["relation"] = {"a": self.relation.a, "relation": self.relation.relation, "b": self.relation.b}
        if self.background is not None:
            out["background"] = self.background
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenSpec:
        if not isinstance(data.get("objects"), list):
            raise ValueError(f"spec {data!r} needs an 'objects' list")
        reqs = []
        for o in data["objects"]:
            if not isinstance(o, dict) or "shape" not in o:
                raise ValueError(f"object requirement {o!r} needs a 'shape'")
            reqs.append(
                Requirement(o["shape"], o.get("color"), int(o.get("count", 1)), bool(o.get("exact", False)))
            )
        rel = data.get("relation")
        relation = None
        if rel is not None:
            if not isinstance(rel, dict) or not {"a", "relation", "b"} <= set(rel):
                raise ValueError(f"relation {rel!r} needs 'a', 'relation' and 'b'")
            relation = Relation(int(rel["a"]), str(rel["relation"]), int(rel["b"]))
        return cls(tuple(reqs), relation, data.get("background"), str(data.get("category", "custom")))


def random_color(rng: np.random.Generator, shape: str, split: str) -> str:
    """A colour for `shape` that `split` allows."""
    colors = [c for c, s in palette.allowed_combos(split) if s == shape]
    return colors[int(rng.integers(len(colors)))]


def random_size(rng: np.random.Generator) -> str:
    sizes = tuple(palette.SIZES)
    return sizes[int(rng.integers(len(sizes)))]


def realise(spec: GenSpec, rng: np.random.Generator, height: int, width: int, split: str = "test") -> Scene:
    """A minimal scene satisfying `spec`: exactly the requested objects, nothing else."""
    wants: list[Want] = []
    first: list[int] = []  # index of each requirement's first object, for the relation
    for req in spec.objects:
        first.append(len(wants))
        for _ in range(req.count):
            color = req.color or random_color(rng, req.shape, split)
            wants.append(Want(req.shape, color, random_size(rng)))
    accept = None
    rel = spec.relation
    if rel is not None:

        def accept(objs: tuple[SceneObject, ...]) -> bool:
            # Exactly the asked relation, so the render is unambiguous for any reader.
            return scene_relations(objs[first[rel.a]], objs[first[rel.b]], height, width) == {rel.relation}

    objects = place(rng, wants, height, width, accept=accept)
    bgs = tuple(palette.BACKGROUNDS)
    background = spec.background or bgs[int(rng.integers(len(bgs)))]
    return Scene(background, objects, height, width)
