"""The shipped default, checkpoints/tuna-shapes: it loads, fits the size budget, and on a handful of fixed
ShapesBench test items (questions about images and videos, generation prompts) it still gives exactly
the answers and images recorded when it was shipped — and the recorded answers are scored against the
truth here, so the file states how good the model is, not only that it is unchanged.

Regenerate the record after retraining: `python tests/test_tuna_shapes.py --record`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tuna.bench.detect import detect
from tuna.bench.items import build_items
from tuna.bench.normalize import is_correct
from tuna.bench.pipeline_tasks import PipelineTasks
from tuna.bench.score_gen import score_image
from tuna.data.shapes.world import WorldConfig
from tuna.model.loading import read_config
from tuna.pipeline import TunaPipeline

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "tuna-shapes"
RECORD = ROOT / "tests" / "assets" / "tuna_shapes_record.json"
IMAGES = ROOT / "tests" / "assets" / "tuna_shapes_t2i"
SHIPPED = read_config(CHECKPOINT)  # questions and pictures at the size and length the model works at
WORLD = WorldConfig(height=SHIPPED.image_size, width=SHIPPED.image_size, frames=SHIPPED.video_frames)
N_VQA, N_VIDEO_QA, N_T2I = 8, 4, 3
T2I_SAMPLING = {"steps": 25, "cfg_scale": 7.5}
MAX_MEAN_PIXEL_DIFF = 2.0  # of 255: same seed, same weights → the same picture up to float noise


def _answers(tasks: PipelineTasks, task: str, n: int) -> list[dict]:
    items = build_items(task, 0, n, WORLD)
    answers = tasks.chat([(it.media, it.question) for it in items], max_new_tokens=24)
    return [
        {
            "question": it.question,
            "gold": it.answer,
            "kind": it.kind,
            "answer": a,
            "correct": _correct(a, it),
        }
        for it, a in zip(items, answers)
    ]


def _correct(answer: str, item) -> bool | None:
    # "describe" questions are scored by caption F1 over the whole benchmark, not right/wrong
    return None if item.kind == "describe" else is_correct(answer, item.answer, item.kind)


def _generate(tasks: PipelineTasks) -> tuple[list[dict], list[Image.Image]]:
    items = build_items("t2i", 0, N_T2I, WORLD)
    images = tasks.generate([it.prompt for it in items], WORLD.height, WORLD.width, seed=0)
    rows = [
        {
            "prompt": it.prompt,
            "score": score_image(it.spec, img),
            "detected": sorted(f"{o.color} {o.shape}" for o in detect(img).objects),
        }
        for it, img in zip(items, images)
    ]
    return rows, images


@pytest.fixture(scope="module")
def tasks() -> PipelineTasks:
    if not CHECKPOINT.is_dir():
        pytest.fail(f"the shipped model is missing: {CHECKPOINT} (it is committed with the repository)")
    return PipelineTasks(TunaPipeline.from_pretrained(CHECKPOINT), T2I_SAMPLING)


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text())


def test_checkpoint_is_complete_and_under_50_mb():
    names = {p.name for p in CHECKPOINT.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= names
    total = sum(p.stat().st_size for p in CHECKPOINT.rglob("*") if p.is_file())
    assert total < 50 * 2**20, f"{total / 2**20:.1f} MB"
    assert json.loads((CHECKPOINT / "config.json").read_text())["config"]["name"] == "shapes"


@pytest.mark.parametrize("task,n", [("vqa", N_VQA), ("video_qa", N_VIDEO_QA)])
def test_answers_fixed_questions_as_recorded(tasks, record, task, n):
    got = _answers(tasks, task, n)
    assert [r["answer"] for r in got] == [r["answer"] for r in record[task]]
    # the record's own correctness flags are recomputed from the truth, not trusted
    assert [r["correct"] for r in got] == [r["correct"] for r in record[task]]


def test_generates_fixed_prompts_as_recorded(tasks, record):
    rows, images = _generate(tasks)
    for row, image, want in zip(rows, images, record["t2i"]):
        reference = np.asarray(Image.open(IMAGES / want["file"]).convert("RGB"), dtype=np.float32)
        diff = np.abs(np.asarray(image.convert("RGB"), dtype=np.float32) - reference).mean()
        assert diff <= MAX_MEAN_PIXEL_DIFF, f"{row['prompt']!r}: mean pixel difference {diff:.2f}"
        assert row["detected"] == want["detected"] and row["score"] == want["score"]


def _record() -> None:
    tasks = PipelineTasks(TunaPipeline.from_pretrained(CHECKPOINT), T2I_SAMPLING)
    out: dict = {"vqa": _answers(tasks, "vqa", N_VQA), "video_qa": _answers(tasks, "video_qa", N_VIDEO_QA)}
    rows, images = _generate(tasks)
    IMAGES.mkdir(parents=True, exist_ok=True)
    for i, (row, image) in enumerate(zip(rows, images)):
        row["file"] = f"t2i_{i}.png"
        image.save(IMAGES / row["file"])
    out["t2i"] = rows
    RECORD.write_text(json.dumps(out, indent=1) + "\n")
    for task in ("vqa", "video_qa"):
        scored = [r["correct"] for r in out[task] if r["correct"] is not None]
        print(f"{task}: {sum(scored)}/{len(scored)} correct")
    print("t2i scores:", [r["score"] for r in rows])


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_tuna_shapes.py --record")
    _record()
