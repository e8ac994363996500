"""The interface ShapesBench calls. `tuna.pipeline.TunaPipeline` implements it; so do the controls."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image

Media = Image.Image | list[Image.Image]  # one image, or a video as its frames


@runtime_checkable
class TunaTasks(Protocol):
    def generate(self, prompts: list[str], height: int, width: int, seed: int) -> list[Image.Image]:
        """One image per prompt."""
        ...

    def chat(self, questions: list[tuple[Media, str]], max_new_tokens: int) -> list[str]:
        """One answer per (image or video frames, question)."""
        ...

    def edit(self, items: list[tuple[Image.Image, str]], seed: int) -> list[Image.Image]:
        """One edited image per (source image, instruction)."""
        ...

    def generate_video(
        self, prompts: list[str], frames: int, height: int, width: int, seed: int
    ) -> list[list[Image.Image]]:
        """One list of `frames` frames per prompt."""
        ...


def load_tasks(model_dir: str | Path, sampling: dict | None = None, device: str = "cpu") -> TunaTasks:
    """Load a trained model from `model_dir` through `tuna.pipeline.TunaPipeline.from_pretrained`, wrapped in
    `PipelineTasks` (the pipeline's own methods take one item per call)."""
    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
    try:
        from tuna.pipeline import TunaPipeline  # lazy: the pipeline pulls in torch and the model stack
    except ImportError as err:
        raise RuntimeError(
            "tuna.pipeline.TunaPipeline is not available in this installation, so no model can be "
            "benchmarked yet; use `--control ground-truth|blank|noise|shuffled` to exercise the scorer"
        ) from err
    from tuna.bench.pipeline_tasks import PipelineTasks

    return PipelineTasks(TunaPipeline.from_pretrained(path, device=device), sampling)
