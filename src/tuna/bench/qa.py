"""Answer and score a file of questions about images or videos: any VQA-style benchmark, or your own data.

Input: the `und` training format (LLaVA conversations, paths relative to the jsonl file), one record
per line: `{"image": "a.jpg", "conversations": [{"from": "human", "value": "<image>\\nQ"},
{"from": "gpt", "value": "A"}]}` (or `"video"`). The model answers the last human turn, with every earlier
turn as context; the gpt turn after it, when present, is the reference.

Scoring (documented so results compare): a reference that is one option letter (A–H, as in MMBench-
style multiple choice) matches a prediction that starts with that capital letter as a word ("B", "B.",
"(B) a cat") or is that letter alone in lower case ("b"); any other reference matches a prediction
equal to it after normalisation — lower case, punctuation and the articles a / an / the removed,
number words zero–ten as digits, spaces collapsed.

The answers file (jsonl) gets one line per record as it is answered, so a stopped run continues: lines
already there are kept and their records skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tuna.bench.lines import json_record, parse_lines
from tuna.data.formats import IMAGE_PLACEHOLDER, ROLES
from tuna.data.shapes.text import NUMBER_WORDS  # zero … ten, as the shapes bench's normaliser reads them

# An option letter at the start: a capital followed by a delimiter ("B", "B.", "(B) a cat"), or a lower-case
# letter alone ("b", "(b)"): a lower-case "a" followed by words is the article, not option A.
_OPTION = re.compile(r"^\(?(?:([A-H])(?:[).:,\s]|$)|([a-h])\)?\.?$)")


@dataclass(frozen=True)
class Question:
    index: int
    line: int  # 1-based line in the file, for error messages
    messages: list[dict[str, Any]]  # chat messages up to the question (pipeline format)
    question: str
    reference: str | None


def normalize(text: str) -> str:
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    words = [str(NUMBER_WORDS.index(w)) if w in NUMBER_WORDS else w for w in words]
    return " ".join(w for w in words if w not in ("a", "an", "the"))


def is_correct(prediction: str, reference: str) -> bool:
    reference = reference.strip()
    if len(reference) == 1 and reference.upper() in "ABCDEFGH":
        found = _OPTION.match(prediction.strip())
        return found is not None and (found.group(1) or found.group(2)).upper() == reference.upper()
    return normalize(prediction) == normalize(reference)


def read_questions(path: Path) -> list[Question]:
    """Every record of the file as a question; a bad record raises ValueError naming its line."""
    root = Path(path).parent
    return parse_lines(
        path,
        "questions file",
        "questions",
        lambda line, number, i: _question(json_record(line), root, i, number),
    )


def _question(record: Any, root: Path, index: int, number: int) -> Question:
    if not isinstance(record, dict):
        raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
    media = [(kind, record[kind]) for kind in ("image", "video") if kind in record]
    if len(media) != 1 or not isinstance(media[0][1], str) or not media[0][1]:
        raise ValueError('expected exactly one of "image" or "video", naming a file')
    kind, name = media[0]
    file = root / name
    if not file.is_file():
        raise FileNotFoundError(f"no {kind} file at {file}")
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise ValueError("empty or missing 'conversations'")
    parsed = []
    for turn in turns:
        role = ROLES.get(turn.get("from")) if isinstance(turn, dict) else None
        value = turn.get("value") if isinstance(turn, dict) else None
        if role not in ("user", "assistant") or not isinstance(value, str) or not value.strip():
            raise ValueError(f"bad conversation turn {turn!r:.80} (expected from human/gpt with a value)")
        parsed.append((role, value))
    last = max((i for i, (role, _) in enumerate(parsed) if role == "user"), default=None)
    if last is None:
        raise ValueError("no human turn to answer")
    reference = parsed[last + 1][1].strip() if last + 1 < len(parsed) else None
    users = [i for i, (role, _) in enumerate(parsed[: last + 1]) if role == "user"]
    tagged = [i for i in users if IMAGE_PLACEHOLDER in parsed[i][1]]
    media_turn = (tagged or users)[0]  # as in training: where "<image>" is, else the first human turn
    messages = []
    for i, (role, value) in enumerate(parsed[: last + 1]):
        if i != media_turn:
            before, after = value, ""
        elif IMAGE_PLACEHOLDER in value:
            before, _, after = value.partition(IMAGE_PLACEHOLDER)
        else:  # no "<image>": the media first, as training puts it
            before, after = "", value
        texts = [t.replace(IMAGE_PLACEHOLDER, "").strip() for t in (before, after)]
        content: list[dict[str, Any]] = [{"type": "text", "text": texts[0]}] if texts[0] else []
        if i == media_turn:
            content.append({"type": kind, kind: str(file)})
        if texts[1]:
            content.append({"type": "text", "text": texts[1]})
        messages.append({"role": role, "content": content})
    question = parsed[last][1].replace(IMAGE_PLACEHOLDER, "").strip()
    return Question(index, number, messages, question, reference)


Answer = Callable[[list[list[dict[str, Any]]]], list[str]]  # conversations → greedy answers


def answer_questions(
    answer: Answer, questions: Sequence[Question], out: Path, batch_size: int = 8, progress: bool = False
) -> dict[str, Any]:
    """Answer the questions not yet in `out` (appending a line each), then score the whole file."""
    if batch_size < 1:
        raise ValueError(f"batch size must be positive, got {batch_size}")
    out = Path(out)
    rows = _rows(out) if out.is_file() else []
    done = set()
    for row in rows:
        index = row.get("index")
        if (
            not isinstance(index, int)
            or index >= len(questions)
            or row.get("question") != questions[index].question
        ):
            raise ValueError(
                f"{out} holds answers to other questions (index {index!r}); choose another --out"
            )
        done.add(index)
    todo = [q for q in questions if q.index not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as f:
        for start in tqdm(
            range(0, len(todo), batch_size), desc="questions", unit="batch", disable=not progress
        ):
            chunk = todo[start : start + batch_size]
            for q, prediction in zip(chunk, _answer_naming_the_line(answer, chunk)):
                correct = None if q.reference is None else is_correct(prediction, q.reference)
                row = {"index": q.index, "line": q.line, "question": q.question, "prediction": prediction,
                       "reference": q.reference, "correct": correct}  # fmt: skip
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                rows.append(row)
            f.flush()
    scored = [r for r in rows if r["correct"] is not None]
    return {
        "answered": len(rows),
        "answered_now": len(todo),
        "scored": len(scored),
        "accuracy": sum(r["correct"] for r in scored) / len(scored) if scored else None,
    }


def _answer_naming_the_line(answer: Answer, chunk: Sequence[Question]) -> list[str]:
    try:
        return answer([q.messages for q in chunk])
    except (ValueError, FileNotFoundError):  # a corrupt image or video: find it and name its line
        for q in chunk:
            try:
                answer([q.messages])
            except (ValueError, FileNotFoundError) as err:
                raise ValueError(f"question at line {q.line}: {err}") from None
        raise


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(
                    f"{path}:{number} is not an answers line; remove it or choose another --out"
                ) from None
    return rows
