"""Loss-curve regression: the `tiny` preset on the shapes world for 50 CPU steps follows the stored
reference curve `tests/assets/tiny_loss_curve.json`.

Tolerance, per step: |loss − reference| ≤ 0.01 + 0.5 % of the reference. On the machine that wrote
the reference, reruns agree to 1e-6 (with 1 or 2 threads: every random draw is seeded per step), so the
band is there for other CPUs and library builds, whose differently ordered float sums Adam amplifies
over 50 steps. It is far tighter than a real change: LR × 0.9 alone moves the curve by 0.06 on average
and by 0.11 at step 50, and fails by step ~15.

Regenerate (after an intended change, saying why in the commit): `python tests/test_train_regression.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from train_helpers import read_metrics, run_train

REFERENCE = Path(__file__).parent / "assets" / "tiny_loss_curve.json"
STEPS = 50
ARGS = ["tiny", "--steps", str(STEPS), "--save-every", "1000"]
ABS_TOL, REL_TOL = 0.01, 0.005


def run_curve(out: Path) -> list[dict]:
    run_train([*ARGS, "--out", str(out)])
    return read_metrics(out)


def test_tiny_loss_curve_matches_reference(tmp_path):
    reference = json.loads(REFERENCE.read_text())
    rows = run_curve(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    bad = [
        (r["step"], r["loss"], ref)
        for r, ref in zip(rows, reference["loss"])
        if abs(r["loss"] - ref) > ABS_TOL + REL_TOL * abs(ref)
    ]
    assert not bad, f"loss left the reference band at (step, loss, reference): {bad[:10]}"
    # The curve really descends: training works, not just reproduces.
    assert sum(reference["loss"][-10:]) < 0.6 * sum(reference["loss"][:10])


if __name__ == "__main__":  # regenerate the reference
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = run_curve(Path(tmp))
    REFERENCE.parent.mkdir(exist_ok=True)
    meta = {
        "preset": "tiny",
        "steps": STEPS,
        "command": "tuna train " + " ".join(ARGS),
        "torch": torch.__version__,
    }
    curve = {key: [r[key] for r in rows] for key in ("loss", "text", "flow", "grad_norm", "lr")}
    REFERENCE.write_text(json.dumps({**meta, **curve}, indent=1) + "\n")
    print(f"wrote {REFERENCE}", file=sys.stderr)
