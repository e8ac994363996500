"""One process and two (FSDP2 on gloo) give the same losses for the same global batch."""

from __future__ import annotations

import shutil

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


def test_processes_whose_samples_differ_in_kind_stay_in_step(tmp_path):
    # One sample per micro-batch: at some steps one process has a text-only or understanding sample
    # (no noisy image, maybe no image at all) while the other denoises. Each process must still run
    # every sharded module and reduce every gradient; before the model ran idle parts on a dummy token,
    # this crashed at the first step with gloo's "Received data size doesn't match expected size".
    args = ["tiny", "--steps", "8", "--save-every", "100", "data.micro_batch=1", "data.global_batch=2"]
    run_train([*args, "--out", str(tmp_path / "one")])
    run_train([*args, "--out", str(tmp_path / "two")], nproc=2)
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r["step"] for r in two] == list(range(1, 9))
    for a, b in zip(one, two):
        for key in ("loss", "text", "flow", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a["step"], key)


def test_sharded_checkpoint_of_two_processes_resumes_on_one(tmp_path):
    # Each of 2 processes writes its own shards (torch.distributed.checkpoint); 1 process must load them
    # re-sharded and continue exactly where the pair would have gone.
    out = tmp_path / "run"
    args = [*ARGS, "--save-every", "2", "keep_last=2", "ema_decay=0.9", "checkpoint_format=sharded"]
    run_train([*args, "--out", str(out)], nproc=2)
    two = read_metrics(out)
    saves = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert saves == ["step_00000002", "step_00000004"]
    assert sorted(p.name for p in (out / "checkpoints" / saves[0]).glob("*.distcp")) == [
        "__0_0.distcp",
        "__1_0.distcp",
    ]  # one shard file per process
    shutil.rmtree(out / "checkpoints" / "step_00000004")  # as if the pair had died after step 2's save
    run_train([*args, "--out", str(out), "--resume"])
    one = read_metrics(out)
    assert [r["step"] for r in one] == [1, 2, 3, 4]
    for a, b in zip(two[2:], one[2:]):
        for key in ("loss", "text", "flow", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a["step"], key)
