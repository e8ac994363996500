"""Bench outputs: a plain-text table, a JSON file (one key per task and category), an HTML report."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from tuna.bench.runner import ItemResult, TaskResult

GIF_FRAME_MS = 120


def scores_dict(results: dict[str, TaskResult]) -> dict[str, dict[str, float]]:
    return {task: dict(r.scores) for task, r in results.items()}


def format_table(results: dict[str, TaskResult]) -> str:
    rows = [(task, cat, f"{v:.3f}") for task, r in results.items() for cat, v in r.scores.items()]
    w0 = max([len("task")] + [len(r[0]) for r in rows])
    w1 = max([len("category")] + [len(r[1]) for r in rows])
    lines = [f"{'task':<{w0}}  {'category':<{w1}}  score", f"{'-' * w0}  {'-' * w1}  -----"]
    lines += [f"{t:<{w0}}  {c:<{w1}}  {v}" for t, c, v in rows]
    return "\n".join(lines)


def write_json(path: str | Path, results: dict[str, TaskResult], meta: dict[str, Any]) -> None:
    out: dict[str, Any] = scores_dict(results)
    out["meta"] = meta
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


def _save_media(media, stem: Path) -> str:
    if isinstance(media, list):
        path = stem.with_suffix(".gif")
        media[0].save(path, save_all=True, append_images=media[1:], duration=GIF_FRAME_MS, loop=0)
    else:
        path = stem.with_suffix(".png")
        media.save(path)
    return path.name


def _cell(media, stem: Path) -> str:
    if media is None:
        return "<td></td>"
    return f'<td><img src="{html.escape(_save_media(media, stem))}" width="128"></td>'


def _row(task: str, i: int, r: ItemResult, out_dir: Path) -> str:
    cells = [
        _cell(r.media_in, out_dir / f"{task}_{i}_in"),
        _cell(r.media_out, out_dir / f"{task}_{i}_out"),
        f"<td>{html.escape(r.text)}</td><td>{html.escape(r.output)}</td><td>{html.escape(r.truth)}</td>",
        f"<td>{html.escape(r.category)}</td><td>{r.score:.2f}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def write_html(out_dir: str | Path, results: dict[str, TaskResult], meta: dict[str, Any]) -> Path:
    """`out_dir/index.html` with the score table and the kept samples beside their prompts and scores."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!doctype html><meta charset='utf-8'><title>ShapesBench</title>",
        "<style>body{font-family:sans-serif} td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        " table{border-collapse:collapse;margin-bottom:2em}</style>",
        f"<h1>ShapesBench</h1><p>{html.escape(json.dumps(meta))}</p>",
        f"<pre>{html.escape(format_table(results))}</pre>",
    ]
    for task, res in results.items():
        parts.append(
            f"<h2>{html.escape(task)}</h2><table><tr><th>input</th><th>output</th><th>prompt / question"
            "</th><th>answer</th><th>truth</th><th>category</th><th>score</th></tr>"
        )
        parts += [
            _row(task, i, r, out)
            for i, r in enumerate(res.items)
            if r.media_in is not None or r.media_out is not None
        ]
        parts.append("</table>")
    index = out / "index.html"
    index.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return index
