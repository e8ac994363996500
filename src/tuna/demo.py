"""`make demo`: every Tuna task end to end on the built-in default, with an HTML report.

The default is the shipped tuna-shapes checkpoint (`checkpoints/tuna-shapes`). Where it is absent, the
demo says so plainly and runs the `tiny` preset with RANDOM weights instead: one real training step,
then the same tasks, whose outputs are noise by construction.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

import torch
from PIL import Image

from tuna import prompts
from tuna.config import get_preset
from tuna.media import write_video
from tuna.model.tuna import TunaModel
from tuna.pipeline import TunaPipeline
from tuna.sequence import Visual, build_batch

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "tuna-shapes"
T2I_PROMPTS = (
    "a red circle",
    "two green squares",
    "a blue square to the left of an orange circle",
    "a yellow circle",  # a held-out colour-shape composition: never in any training prompt
)
EDIT_KINDS = ("add", "remove", "recolor", "replace", "move", "background")


def random_tiny_pipeline(seed: int) -> TunaPipeline:
    """The tiny preset with random weights, after one real stage-2 training step."""
    from tuna.tokenizer import small_tokenizer
    from tuna.train.freeze import apply_freezing

    torch.manual_seed(seed)
    model = TunaModel(get_preset("tiny"))
    model.init_weights()
    model.tokenizer = small_tokenizer()
    encode = lambda text: model.tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    pixels = torch.rand(3, 1, 64, 64) * 2 - 1
    samples = [
        prompts.captioning(encode, Visual(pixels=pixels), "a red square in the middle"),
        prompts.text_to_visual(encode, "a red square in the middle", Visual(pixels=pixels, noisy=True)),
    ]
    apply_freezing(model, stage=2)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    start = time.perf_counter()
    losses = model(
        build_batch(samples, model.cfg.tokens, model.cfg.vae), generator=torch.Generator().manual_seed(seed)
    )
    losses["loss"].backward()
    optimizer.step()
    print(
        f"[train]  one step in {time.perf_counter() - start:.2f} s: loss {losses['loss']:.4f} "
        f"(text {losses['text']:.4f}, flow {losses['flow']:.4f})"
    )
    return TunaPipeline(model)


class Report:
    """Collects (title, image or frames, caption) rows; writes report.html and a PNG grid."""

    def __init__(self, out: Path):
        self.out, self.rows = out, []

    def add(self, section: str, media: Image.Image | list[Image.Image], caption: str) -> None:
        stem = f"{len(self.rows):02d}"
        if isinstance(media, list):
            path = write_video(media, self.out / f"{stem}.gif")
            still = media[len(media) // 2]
        else:
            path = self.out / f"{stem}.png"
            media.save(path)
            still = media
        self.rows.append((section, path.name, caption, still))

    def write(self, header: str) -> None:
        cells = "\n".join(
            f"<figure><figcaption><b>{html.escape(s)}</b></figcaption><img src='{p}' width=160>"
            f"<figcaption>{html.escape(c)}</figcaption></figure>"
            for s, p, c, _ in self.rows
        )
        style = "body{font-family:sans-serif} figure{display:inline-block;width:180px;vertical-align:top}"
        page = f"<html><head><meta charset='utf-8'><style>{style}</style></head><body><h1>Tuna demo</h1>"
        (self.out / "report.html").write_text(f"{page}<pre>{html.escape(header)}</pre>{cells}</body></html>")
        side = 128
        cols = 6
        grid = Image.new("RGB", (cols * side, -(-len(self.rows) // cols) * side), "white")
        for i, (*_, still) in enumerate(self.rows):
            grid.paste(still.convert("RGB").resize((side, side)), ((i % cols) * side, (i // cols) * side))
        grid.save(self.out / "grid.png")


def run_demo(
    out: str | Path, seed: int = 0, model: str | Path | None = None, steps: int = 25, bench_n: int = 8
) -> int:
    from tuna.data.shapes.world import ShapesWorld, WorldConfig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    checkpoint = Path(model) if model else DEFAULT_CHECKPOINT
    trained = (checkpoint / "config.json").is_file()
    if trained:
        header = f"Tuna demo — {checkpoint} on the CPU"
        print(header)
        pipe = TunaPipeline.from_pretrained(checkpoint)
    else:
        header = (
            f"Tuna demo — no trained checkpoint at {checkpoint}: running the 'tiny' preset with RANDOM weights.\n"
            "Every step really runs; the images, videos and answers are noise until a model is trained."
        )
        print(header + "\n")
        pipe = random_tiny_pipeline(seed)
    size = pipe.cfg.image_size
    frames = pipe.cfg.video_frames
    world = ShapesWorld(seed, "test", WorldConfig(height=size, width=size, frames=frames))
    report = Report(out)
    sampling = {"steps": steps, "seed": seed}

    vqa = world.sample("vqa", 0)
    report.add("question image", vqa.image, "a rendered test scene")
    for pair in vqa.qa:
        answer = pipe.chat(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "image": vqa.image},
                        {"type": "text", "text": pair.question},
                    ],
                }
            ],
            max_new_tokens=32,
        )
        print(f"[vqa]    {pair.question} → {answer!r} (truth: {pair.answer!r})")
        report.add("understanding", vqa.image, f"Q: {pair.question} A: {answer} (truth: {pair.answer})")

    for prompt in T2I_PROMPTS:
        image = pipe.generate(prompt, size, size, cfg_scale=4.0, **sampling)
        print(f"[t2i]    {prompt!r}")
        report.add("text-to-image", image, prompt)

    seen, index = set(), 0
    while len(seen) < len(EDIT_KINDS) and index < 500:
        sample = world.sample("edit", index)
        index += 1
        if sample.op.kind in seen:
            continue
        seen.add(sample.op.kind)
        edited = pipe.edit(sample.source_image, sample.instruction, **sampling)
        print(f"[edit]   {sample.op.kind}: {sample.instruction!r}")
        report.add(f"edit source ({sample.op.kind})", sample.source_image, sample.instruction)
        report.add(f"edit result ({sample.op.kind})", edited, sample.instruction)

    video_prompt = "a red circle moving to the right"
    video = pipe.generate_video(video_prompt, frames, size, size, cfg_scale=4.0, **sampling)
    print(f"[video]  {video_prompt!r} → {len(video)} frames")
    report.add("text-to-video", video, video_prompt)

    vq = world.sample("video_qa", 0)
    pair = vq.qa[0]
    answer = pipe.chat(
        [
            {
                "role": "user",
                "content": [{"type": "video", "video": vq.frames}, {"type": "text", "text": pair.question}],
            }
        ],
        max_new_tokens=32,
        video_frames=len(vq.frames),
    )
    print(f"[video?] {pair.question} → {answer!r} (truth: {pair.answer!r})")
    report.add("video understanding", vq.frames, f"Q: {pair.question} A: {answer} (truth: {pair.answer})")

    summary = bench_summary(pipe, size, frames, seed, bench_n, steps)
    print(
        f"\nShapesBench on a small sample (n = {bench_n} per task; `tuna bench shapes` for the full run):\n{summary}"
    )
    report.write(f"{header}\n\nShapesBench, n = {bench_n} per task:\n{summary}")
    print(f"\nWrote {out / 'report.html'} and {out / 'grid.png'} in {time.perf_counter() - started:.0f} s.")
    if trained:
        where = os.path.relpath(checkpoint) if checkpoint.resolve().is_relative_to(Path.cwd()) else checkpoint
        print(f"Try it yourself in the browser: tuna serve --model {where}, then open http://127.0.0.1:8000/")
    return 0


def bench_summary(pipe: TunaPipeline, size: int, frames: int, seed: int, n: int, steps: int) -> str:
    from tuna.bench.items import build_items
    from tuna.bench.pipeline_tasks import PipelineTasks
    from tuna.bench.report import format_table
    from tuna.bench.runner import BenchConfig, run_bench
    from tuna.data.shapes.world import WorldConfig

    world = WorldConfig(height=size, width=size, frames=frames)
    items = {task: build_items(task, seed, n, world) for task in ("t2i", "vqa", "edit", "t2v", "video_qa")}
    tasks = PipelineTasks(pipe, {"steps": steps, "cfg_scale": 4.0})
    results = run_bench(tasks, items, BenchConfig(height=size, width=size, frames=frames, seed=seed))
    return format_table(results)
