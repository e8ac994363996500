"""`tuna bench qa`: answer and score a jsonl of questions about images (the `und` training format)."""

import json

import pytest
from PIL import Image

from tuna.bench.qa import answer_questions, is_correct, normalize, read_questions


def test_scoring_rules():
    assert normalize("The Two red cars!") == "2 red cars"
    assert is_correct("Two dogs.", "2 dogs") and is_correct("a red car", "Red car")
    assert not is_correct("red cars and a dog", "red car")
    for prediction in ("B", "b", "B.", "(B) a cat", "B: a cat"):
        assert is_correct(prediction, "B"), prediction
    for prediction in ("Because it is", "A", "", "the answer is B", "b is it"):
        assert not is_correct(prediction, "B"), prediction
    assert not is_correct("a red car", "A")  # the article, not option A
    assert is_correct("a", "A") and is_correct("(a)", "A")


def write_questions(tmp_path, records):
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "red.png")
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


RECORDS = [
    {
        "image": "red.png",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is it?"},
            {"from": "gpt", "value": "Red."},
        ],
    },  # fmt: skip
    {
        "image": "red.png",
        "conversations": [
            {"from": "human", "value": "Describe it."},
            {"from": "gpt", "value": "A red box."},
            {"from": "human", "value": "Which option? A. red B. blue"},
            {"from": "gpt", "value": "A"},
        ],
    },  # fmt: skip
    {"image": "red.png", "conversations": [{"from": "human", "value": "Is it <image> round?"}]},
]


def test_questions_keep_the_context_and_place_the_image_as_training_does(tmp_path):
    questions = read_questions(write_questions(tmp_path, RECORDS))
    first, second, third = questions
    image = {"type": "image", "image": str(tmp_path / "red.png")}
    assert first.messages == [
        {"role": "user", "content": [image, {"type": "text", "text": "What colour is it?"}]}
    ]
    assert (first.question, first.reference) == ("What colour is it?", "Red.")
    # The image goes first in the first human turn when no turn says "<image>"; earlier turns are context.
    assert second.messages == [
        {"role": "user", "content": [image, {"type": "text", "text": "Describe it."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A red box."}]},
        {"role": "user", "content": [{"type": "text", "text": "Which option? A. red B. blue"}]},
    ]
    assert second.reference == "A"
    assert third.messages[0]["content"] == [
        {"type": "text", "text": "Is it"}, image, {"type": "text", "text": "round?"}
    ]  # fmt: skip
    assert third.reference is None


def test_answers_are_appended_scored_and_resumed(tmp_path):
    questions = read_questions(write_questions(tmp_path, RECORDS))
    seen = []

    def answer(conversations):
        seen.append(len(conversations))
        return ["red", "B", "yes"][: len(conversations)] if len(conversations) > 1 else ["A"]

    out = tmp_path / "answers.jsonl"
    summary = answer_questions(answer, questions[:2], out, batch_size=2)
    assert summary == {"answered": 2, "answered_now": 2, "scored": 2, "accuracy": 0.5}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["prediction"], r["reference"], r["correct"]) for r in rows] == [
        ("red", "Red.", True),
        ("B", "A", False),
    ]
    # Run again over all three: the two answered ones are kept, only the third is asked.
    summary = answer_questions(answer, questions, out, batch_size=2)
    assert seen == [2, 1] and summary["answered"] == 3 and summary["scored"] == 2  # no reference: not scored
    other = read_questions(write_questions(tmp_path, [RECORDS[2], RECORDS[0]]))
    with pytest.raises(ValueError, match="holds answers to other questions"):
        answer_questions(answer, other, out)


def test_bad_questions_are_named_by_line(tmp_path):
    for record, message in (
        ("{oops", "questions.jsonl:2: not JSON"),
        (
            {"image": "missing.png", "conversations": RECORDS[0]["conversations"]},
            "questions.jsonl:2: no image file",
        ),
        ({"image": "red.png"}, "questions.jsonl:2: empty or missing 'conversations'"),
        ({"image": "red.png", "video": "red.png", "conversations": []}, 'exactly one of "image" or "video"'),
        ({"image": "red.png", "conversations": [{"from": "gpt", "value": "x"}]}, "no human turn"),
    ):
        with pytest.raises(ValueError, match=message):
            read_questions(write_questions(tmp_path, [RECORDS[0], record]))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    record = {"image": "broken.png", "conversations": RECORDS[0]["conversations"]}
    questions = read_questions(write_questions(tmp_path, [RECORDS[0], record]))

    def answer(conversations):
        for c in conversations:
            if "broken" in c[0]["content"][0]["image"]:
                raise ValueError("broken.png is not a readable image")
        return ["x"] * len(conversations)

    with pytest.raises(ValueError, match="question at line 2: broken.png is not a readable image"):
        answer_questions(answer, questions, tmp_path / "a.jsonl", batch_size=2)


def test_cli_answers_with_a_real_model_as_chat_does(tmp_path, capsys):
    from serve_helpers import tiny_pipe
    from tuna.cli import main

    pipe = tiny_pipe()
    pipe.model.save_pretrained(tmp_path / "ckpt")
    data = write_questions(tmp_path, RECORDS)
    out = tmp_path / "answers.jsonl"
    argv = ["bench", "qa", "--model", str(tmp_path / "ckpt"), "--data", str(data), "--out", str(out),
            "--max-new-tokens", "4", "--batch-size", "2", "--json", str(tmp_path / "summary.json")]  # fmt: skip
    assert main(argv) == 0
    assert "over 2 questions with a reference (3 answered, 3 now)" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for row, question in zip(rows, read_questions(data)):
        assert row["prediction"] == pipe.chat(question.messages, max_new_tokens=4)  # greedy, batched or not
    assert json.loads((tmp_path / "summary.json").read_text())["answered"] == 3
