import argparse
import json

import pytest
from PIL import Image

from tuna.data.shapes.cli import register


def _parser():
    parser = argparse.ArgumentParser(prog="tuna")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.mark.parametrize("task", ["t2i", "vqa", "edit", "video"])
def test_preview(tmp_path, task):
    args = _parser().parse_args(["data", "preview", "--task", task, "--n", "4", "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 0
    texts = [json.loads(line) for line in (tmp_path / "texts.jsonl").read_text().splitlines()]
    assert len(texts) == 4
    if task == "video":
        assert len(list(tmp_path.glob("*.gif"))) == 4


def test_preview_rejects_unknown_task(tmp_path):
    with pytest.raises(SystemExit):
        _parser().parse_args(["data", "preview", "--task", "audio", "--out", str(tmp_path)])
