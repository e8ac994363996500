"""The structured scene: what is drawn where. Resolution-independent positions, JSON round-trip."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tuna.data.shapes import palette


@dataclass(frozen=True)
class SceneObject:
    """One shape. `x`, `y` are the centre of its bounding box as fractions of the canvas width and height."""

    shape: str
    color: str
    size: str
    x: float
    y: float

    def __post_init__(self) -> None:
        if self.shape not in palette.SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {palette.SHAPES}")
        if self.color not in palette.COLORS:
            raise ValueError(f"unknown colour {self.color!r}; expected one of {tuple(palette.COLORS)}")
        if self.size not in palette.SIZES:
            raise ValueError(f"unknown size {self.size!r}; expected one of {tuple(palette.SIZES)}")
        if not (0.0 <= self.x <= 1.0 and 0.0 <= self.y <= 1.0):
            raise ValueError(f"object position ({self.x}, {self.y}) must lie in [0, 1]")

    @property
    def combo(self) -> tuple[str, str]:
        return (self.color, self.shape)

    @property
    def name(self) -> str:
        """'red circle' — how texts refer to it."""
        return f"{self.color} {self.shape}"

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "color": self.color, "size": self.size, "x": self.x, "y": self.y}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SceneObject:
        missing = {"shape", "color", "size", "x", "y"} - set(data)
        if missing:
            raise ValueError(f"scene object {data!r} lacks {sorted(missing)}")
        return cls(
            str(data["shape"]), str(data["color"]), str(data["size"]), float(data["x"]), float(data["y"])
        )


@dataclass(frozen=True)
class Scene:
    """A background colour and 0–4 objects on a `height`×`width` canvas."""

    background: str
    objects: tuple[SceneObject, ...] = field(default_factory=tuple)
    height: int = palette.DEFAULT_SIZE
    width: int = palette.DEFAULT_SIZE

    def __post_init__(self) -> None:
        if self.background not in palette.BACKGROUNDS:
            raise ValueError(
                f"unknown background {self.background!r}; expected one of {tuple(palette.BACKGROUNDS)}"
            )
        palette.check_canvas(self.height, self.width)
        object.__setattr__(self, "objects", tuple(self.objects))

    def with_objects(self, objects: tuple[SceneObject, ...] | list[SceneObject]) -> Scene:
        return replace(self, objects=tuple(objects))

    def count(self, shape: str | None = None, color: str | None = None) -> int:
        return sum(1 for o in self.objects if shape in (None, o.shape) and color in (None, o.color))

    def to_dict(self) -> dict[str, Any]:
        return {
            "background": self.background,
            "height": self.height,
            "width": self.width,
            "objects": [o.to_dict() for o in self.objects],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        if "background" not in data:
            raise ValueError(f"scene {data!r} lacks 'background'")
        objects = tuple(SceneObject.from_dict(o) for o in data.get("objects", []))
        return cls(
            str(data["background"]),
            objects,
            int(data.get("height", palette.DEFAULT_SIZE)),
            int(data.get("width", palette.DEFAULT_SIZE)),
        )
