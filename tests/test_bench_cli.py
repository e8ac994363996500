import argparse
import json
import sys

import pytest

from tuna.bench.cli import register
from tuna.bench.protocol import load_tasks


def _parser():
    parser = argparse.ArgumentParser(prog="tuna")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_control_run_writes_json_and_report(tmp_path, capsys):
    args = _parser().parse_args(
        [
            "bench",
            "shapes",
            "--control",
            "ground-truth",
            "--tasks",
            "t2i,vqa,t2v",
            "--n",
            "6",
            "--frames",
            "5",
            "--json",
            str(tmp_path / "s.json"),
            "--report",
            str(tmp_path / "rep"),
        ]
    )
    assert args.func(args) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    assert set(scores) == {"t2i", "vqa", "t2v", "meta"}
    assert scores["t2i"]["overall"] == 1.0 and "overall" in scores["vqa"]
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "<img" in html and ".gif" in html
    assert "overall" in capsys.readouterr().out


def test_user_prompts(tmp_path):
    lines = [
        {
            "prompt": "two red circles",
            "category": "counting",
            "objects": [{"shape": "circle", "color": "red", "count": 2, "exact": True}],
        },
        {
            "prompt": "a square above a triangle",
            "objects": [{"shape": "square"}, {"shape": "triangle"}],
            "relation": {"a": 0, "relation": "above", "b": 1},
        },
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    for control, want in (("ground-truth", 1.0), ("blank", 0.0)):
        args = _parser().parse_args(
            [
                "bench",
                "shapes",
                "--control",
                control,
                "--prompts",
                str(path),
                "--json",
                str(tmp_path / "o.json"),
            ]
        )
        args.func(args)
        scores = json.loads((tmp_path / "o.json").read_text())
        assert scores["t2i"]["counting"] == want and scores["t2i"]["custom"] == want


def test_bad_prompt_file_names_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "x", "objects": [{"shape": "hexagon"}]}\n')
    args = _parser().parse_args(["bench", "shapes", "--control", "blank", "--prompts", str(path)])
    with pytest.raises(ValueError, match="p.jsonl:1"):
        args.func(args)


def test_parser_rejects_bad_input():
    with pytest.raises(SystemExit):
        _parser().parse_args(["bench", "shapes", "--control", "blank", "--tasks", "t2i,audio"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["bench", "shapes"])  # needs --model or --control


def test_model_loading_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        load_tasks(tmp_path / "missing")
    monkeypatch.setitem(sys.modules, "tuna.pipeline", None)  # as if the pipeline were not installed
    with pytest.raises(RuntimeError, match="TunaPipeline"):
        load_tasks(tmp_path)


class _FakePipeline:
    """The call shapes of tuna.pipeline.TunaPipeline, answering trivially."""

    def __init__(self):
        self.calls = []

    def generate(self, prompts, height=None, width=None, seed=0):
        from PIL import Image

        return [Image.new("RGB", (width, height)) for _ in prompts]

    def chat_batch(self, conversations, max_new_tokens=256, video_frames=None):
        for messages in conversations:
            self.calls.append((messages[0]["content"][0]["type"], video_frames))
        return ["yes"] * len(conversations)

    def edit(self, images, instructions, seeds=None):
        assert len(images) == len(instructions) == len(seeds)
        return list(images)

    def generate_video(self, prompt, frames=None, height=None, width=None, seed=0):
        return self.generate([prompt] * frames, height, width, seed)


def test_pipeline_adapter_speaks_the_protocol():
    from PIL import Image

    from tuna.bench.pipeline_tasks import PipelineTasks
    from tuna.bench.protocol import TunaTasks

    fake = _FakePipeline()
    tasks = PipelineTasks(fake)
    assert isinstance(tasks, TunaTasks)
    im = Image.new("RGB", (64, 64))
    assert len(tasks.generate(["a", "b"], 64, 64, 0)) == 2
    assert tasks.chat([(im, "q"), ([im] * 5, "q")], 8) == ["yes", "yes"]
    assert fake.calls == [("image", None), ("video", 5)]
    assert tasks.edit([(im, "x")], 0) == [im]
    assert [len(v) for v in tasks.generate_video(["a"], 5, 64, 64, 0)] == [5]


def test_bench_runs_a_real_checkpoint_end_to_end(tmp_path):
    """`tuna bench shapes --model DIR` through TunaPipeline (tiny random weights: scores are ~0)."""
    import json

    from tuna.cli import main
    from tuna.config import get_preset
    from tuna.model.tuna import TunaModel
    from tuna.tokenizer import small_tokenizer

    model = TunaModel(get_preset("tiny"))
    model.init_weights()
    model.tokenizer = small_tokenizer()
    model.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "scores.json"
    # No --size: the bench works at the side the model was trained at (the tiny preset's 64).
    argv = ["bench", "shapes", "--model", str(tmp_path / "ckpt"), "--n", "2", "--frames", "5",
            "--steps", "2", "--tasks", "t2i,vqa,edit,t2v,video_qa", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    scores = json.loads(out.read_text())
    assert scores["meta"]["size"] == model.cfg.image_size == 64
    assert {"t2i", "vqa", "edit", "t2v", "video_qa"} <= set(scores)
    assert all("overall" in scores[task] for task in ("t2i", "vqa", "edit", "t2v", "video_qa"))
