"""The shapes world: a deterministic synthetic multimodal dataset for every Tuna task (docs/shapes-world.md)."""

from tuna.data.shapes.render import render
from tuna.data.shapes.samples import (
    CaptionSample,
    EditOp,
    EditSample,
    QAPair,
    T2ISample,
    VideoQASample,
    VideoSample,
    VideoScene,
    VQASample,
)
from tuna.data.shapes.scene import Scene, SceneObject
from tuna.data.shapes.spec import GenSpec, Relation, Requirement, realise
from tuna.data.shapes.video import render_video
from tuna.data.shapes.world import ShapesWorld, WorldConfig

__all__ = [
    "CaptionSample",
    "EditOp",
    "EditSample",
    "GenSpec",
    "QAPair",
    "Relation",
    "Requirement",
    "Scene",
    "SceneObject",
    "ShapesWorld",
    "T2ISample",
    "VQASample",
    "VideoQASample",
    "VideoSample",
    "VideoScene",
    "WorldConfig",
    "realise",
    "render",
    "render_video",
]
