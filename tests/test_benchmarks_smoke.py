"""`benchmarks/run.py --smoke`: every benchmark's code path runs on the tiny preset (no timing asserts)."""

import json

from benchmarks.run import main


def test_benchmarks_smoke(tmp_path):
    assert main(["--smoke", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "tiny-cpu-smoke.json").read_text())
    assert {"train", "t2i", "understanding", "vae", "hf_baseline"} <= set(results)
    assert results["train"]["flops_per_step"] > 0
    assert set(results["t2i"]) == {
        f"batch{b}_{mode}_s_per_image" for b in (1, 4) for mode in ("prefix_cache", "recompute")
    }


def test_flow_token_benchmark_runs_and_finds_the_same_losses(capsys):
    from benchmarks.bench_flow_tokens import main as bench_flow_tokens

    assert bench_flow_tokens(["--preset", "tiny", "--batches", "2"]) == 0
    assert "same losses" in capsys.readouterr().out
