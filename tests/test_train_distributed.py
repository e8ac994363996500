"""One process and two (FSDP2 on gloo) give the same losses for the same global batch."""

from __future__ import annotations

import pytest

from train_helpers import read_metrics, run_train

# global_batch 8 = 2 micro-batches of 4: one process accumulates both, two processes take one each.
ARGS = ["tiny", "--steps", "4", "--save-every", "100", "data.micro_batch=4", "data.global_batch=8"]


def test_one_and_two_processes_agree(tmp_path):
    run_train([*ARGS, "--out", str(tmp_path / "one")])
    run_train([*ARGS, "--out", str(tmp_path / "two")], nproc=2)
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2, 3, 4]
    for a, b in zip(one, two):
        assert a["tokens"] == b["tokens"]  # the same samples
        for key in ("loss", "text", "flow", "grad_norm"):
            # Only the order of float sums differs (FSDP's reduce-scatter vs local accumulation).
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a["step"], key)
