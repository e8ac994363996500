"""`tuna demo` runs every task and writes its report (tiny random fallback when no checkpoint is given)."""

from tuna.cli import main


def test_demo_writes_report_and_grid(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--model", str(tmp_path / "none"), "--steps", "2", "--bench-n", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "RANDOM weights" in printed and "[train]" in printed
    for task in ("[vqa]", "[t2i]", "[edit]", "[video]", "[video?]", "ShapesBench"):
        assert task in printed
    page = (out / "report.html").read_text()
    assert (
        page.count("<figure>") == 1 + 1 + 4 + 12 + 1 + 1
    )  # image, VQA, 4 prompts, 6 edits × 2, video, video QA
    assert (out / "grid.png").is_file()
