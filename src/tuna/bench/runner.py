"""Run a `TunaTasks` over benchmark items in batches, score every answer, aggregate per category."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from tuna.bench.items import BenchItem, EditItem, QAItem, T2IItem, T2VItem
from tuna.bench.normalize import caption_f1, is_correct
from tuna.bench.protocol import TunaTasks
from tuna.bench.score_edit import score_edit
from tuna.bench.score_gen import score_image, score_video
from tuna.data.shapes.edit import KINDS as EDIT_KINDS
from tuna.data.shapes.spec import CATEGORIES as T2I_CATEGORIES
from tuna.data.shapes.video import QA_KINDS as VIDEO_QA_KINDS
from tuna.data.shapes.vqa import KINDS as VQA_KINDS

KEEP_MEDIA = 8  # items per task whose outputs are kept for the HTML report


@dataclass(frozen=True)
class BenchConfig:
    height: int = 128
    width: int = 128
    frames: int = 17
    seed: int = 0
    batch_size: int = 8
    max_new_tokens: int = 64


@dataclass(frozen=True, eq=False)
class ItemResult:
    category: str
    score: float
    text: str  # prompt, question or instruction
    output: str  # the model's answer, or "" for generation
    truth: str  # gold answer or a short description of what was asked
    media_in: Image.Image | list[Image.Image] | None = None
    media_out: Image.Image | list[Image.Image] | None = None


@dataclass
class TaskResult:
    task: str
    scores: dict[str, float]
    items: list[ItemResult] = field(default_factory=list)


def _batches(items: Sequence, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _aggregate(results: list[ItemResult], order: Sequence[str]) -> dict[str, float]:
    by_cat: dict[str, list[float]] = defaultdict(list)
    for r in results:
        by_cat[r.category].append(r.score)
    cats = [c for c in order if c in by_cat] + sorted(c for c in by_cat if c not in order)
    return {c: _mean(by_cat[c]) for c in cats}


def _keep(i: int, media):
    return media if i < KEEP_MEDIA else None


def run_t2i(tasks: TunaTasks, items: Sequence[T2IItem], cfg: BenchConfig) -> TaskResult:
    results = []
    for batch in _batches(items, cfg.batch_size):
        images = _call(
            tasks.generate, [it.prompt for it in batch], len(batch), cfg.height, cfg.width, cfg.seed
        )
        for it, im in zip(batch, images):
            i = len(results)
            results.append(
                ItemResult(
                    it.spec.category,
                    score_image(it.spec, im),
                    it.prompt,
                    "",
                    str(it.spec.to_dict()),
                    None,
                    _keep(i, im),
                )
            )
    scores = _aggregate(results, T2I_CATEGORIES)
    scores["overall"] = _mean(list(scores.values()))  # GenEval: mean over categories
    held = [r.score for r, it in zip(results, items) if it.spec.held_out]
    if held:
        scores["held_out"] = _mean(held)
    return TaskResult("t2i", scores, results)


def _qa(
    tasks: TunaTasks, items: Sequence[QAItem], cfg: BenchConfig, task: str, order: Sequence[str]
) -> TaskResult:
    results = []
    for batch in _batches(items, cfg.batch_size):
        answers = _call(tasks.chat, [(it.media, it.question) for it in batch], len(batch), cfg.max_new_tokens)
        for it, ans in zip(batch, answers):
            if it.kind == "describe":
                category, score = "caption_f1", caption_f1(ans, _combos(it), it.scene.background)
            else:
                category, score = it.kind, float(is_correct(ans, it.answer, it.kind))
            results.append(
                ItemResult(category, score, it.question, ans, it.answer, _keep(len(results), it.media))
            )
    scores = _aggregate(results, [("caption_f1" if k == "describe" else k) for k in order])
    scores["overall"] = _mean(list(scores.values()))
    return TaskResult(task, scores, results)


def _combos(it: QAItem) -> Counter[tuple[str | None, str]]:
    return Counter((o.color, o.shape) for o in it.scene.objects)


def run_vqa(tasks: TunaTasks, items: Sequence[QAItem], cfg: BenchConfig) -> TaskResult:
    return _qa(tasks, items, cfg, "vqa", VQA_KINDS)


def run_video_qa(tasks: TunaTasks, items: Sequence[QAItem], cfg: BenchConfig) -> TaskResult:
    return _qa(tasks, items, cfg, "video_qa", VIDEO_QA_KINDS)


def run_edit(tasks: TunaTasks, items: Sequence[EditItem], cfg: BenchConfig) -> TaskResult:
    results, pres, overall = [], [], []
    for batch in _batches(items, cfg.batch_size):
        outs = _call(tasks.edit, [(it.image, it.instruction) for it in batch], len(batch), cfg.seed)
        for it, im in zip(batch, outs):
            s = score_edit(it.source, it.op, im)
            pres.append(s.preservation)
            overall.append(s.overall)
            i = len(results)
            results.append(
                ItemResult(
                    it.op.kind,
                    float(s.success),
                    it.instruction,
                    "",
                    f"preservation {s.preservation:.2f}",
                    _keep(i, it.image),
                    _keep(i, im),
                )
            )
    scores = _aggregate(results, EDIT_KINDS)
    scores["preservation"] = _mean(pres)
    scores["overall"] = _mean(overall)  # an edit counts only as much as it succeeded AND preserved the rest
    return TaskResult("edit", scores, results)


def run_t2v(tasks: TunaTasks, items: Sequence[T2VItem], cfg: BenchConfig) -> TaskResult:
    results, objs, motion = [], [], []
    for batch in _batches(items, cfg.batch_size):
        videos = _call(
            tasks.generate_video,
            [it.prompt for it in batch],
            len(batch),
            cfg.frames,
            cfg.height,
            cfg.width,
            cfg.seed,
        )
        for it, frames in zip(batch, videos):
            s = score_video(it.video, frames)
            objs.append(s.objects)
            motion.append(s.motion)
            truth = ", ".join(f"{o.name} {d}" for o, d in zip(it.video.scene.objects, it.video.directions))
            results.append(
                ItemResult("t2v", s.overall, it.prompt, "", truth, None, _keep(len(results), frames))
            )
    scores = {"objects": _mean(objs), "motion": _mean(motion)}
    scores["overall"] = (scores["objects"] + scores["motion"]) / 2
    return TaskResult("t2v", scores, results)


def _call(method: Callable, inputs: list, expected: int, *args):
    outputs = method(inputs, *args)
    if len(outputs) != expected:
        raise ValueError(f"{method.__name__} returned {len(outputs)} outputs for {expected} inputs")
    return outputs


RUNNERS: dict[str, Callable[[TunaTasks, Sequence[BenchItem], BenchConfig], TaskResult]] = {
    "t2i": run_t2i,
    "vqa": run_vqa,
    "edit": run_edit,
    "t2v": run_t2v,
    "video_qa": run_video_qa,
}


def run_bench(
    tasks: TunaTasks, items: dict[str, Sequence[BenchItem]], cfg: BenchConfig
) -> dict[str, TaskResult]:
    """Score `tasks` on each task's items; keys of `items` name the tasks to run."""
    unknown = set(items) - set(RUNNERS)
    if unknown:
        raise ValueError(f"unknown bench tasks {sorted(unknown)}; expected some of {tuple(RUNNERS)}")
    return {task: RUNNERS[task](tasks, task_items, cfg) for task, task_items in items.items()}
