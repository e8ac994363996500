"""kill -9 of a real training process, then --resume: exactly the losses of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from train_helpers import TERMS, read_metrics, run_train, train_command, train_env

STEPS = 12
ARGS = ["tiny", "--steps", str(STEPS), "--save-every", "3", "keep_last=2", "ema_decay=0.9"]


@pytest.mark.parametrize("fmt", ["full", "sharded"])
def test_kill_and_resume_reproduces_losses(tmp_path, fmt):
    args = [*ARGS, f"checkpoint_format={fmt}"]
    run_train([*ARGS, "--out", str(tmp_path / "ref")])
    reference = read_metrics(tmp_path / "ref")

    out = tmp_path / "killed"
    proc = subprocess.Popen(train_command([*args, "--out", str(out)]), env=train_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # kill once past a checkpoint, mid-run
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 7:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(read_metrics(out)) if metrics.is_file() else 0
    assert killed_at < STEPS
    checkpoints = sorted(p.name for p in (out / "checkpoints").glob("step_*") if not p.name.endswith(".tmp"))
    assert checkpoints and len(checkpoints) <= 2  # keep_last
    assert all(name.endswith(".pt") == (fmt == "full") for name in checkpoints)

    run_train([*args, "--out", str(out), "--resume"])
    resumed = read_metrics(out)
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    for a, b in zip(reference, resumed):
        for key in TERMS:
            assert a[key] == b[key], (a["step"], key, a[key], b[key])  # bit-exact
    assert json.loads((out / "final" / "config.json").read_text())["format"] == "tuna"
