"""Speed check for the shapes world: 1,000 scenes must render and score in under 10 s on one CPU core.

    .venv/bin/python benchmarks/bench_shapes_speed.py [--n 1000] [--size 128]

Times, per T2I item: drawing the ground-truth render (anti-aliased) and scoring it (detector + GenEval-style
check). Scene sampling (prompt + layout) is timed separately. Not a unit test: timings are machine-dependent.
"""

from __future__ import annotations

import argparse
import os

# One core: keep any BLAS/OpenMP pools from spreading the work (set before numpy loads).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import time  # noqa: E402

from tuna.bench.score_gen import score_image  # noqa: E402
from tuna.data.shapes.render import render  # noqa: E402
from tuna.data.shapes.world import ShapesWorld, WorldConfig  # noqa: E402

BUDGET_S = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    world = ShapesWorld(0, "test", WorldConfig(height=args.size, width=args.size))
    t0 = time.perf_counter()
    samples = list(world.samples("t2i", stop=args.n))
    sampled = time.perf_counter() - t0

    t0 = time.perf_counter()
    total = 0.0
    for s in samples:
        total += score_image(s.spec, render(s.scene))
    elapsed = time.perf_counter() - t0

    print(
        f"{args.n} scenes at {args.size}x{args.size}: render+score {elapsed:.2f} s "
        f"({1000 * elapsed / args.n:.2f} ms/scene), sampling incl. a first render {sampled:.2f} s, "
        f"ground-truth score {total / args.n:.3f}"
    )
    ok = elapsed < BUDGET_S * args.n / 1000
    print("OK" if ok else f"TOO SLOW: budget is {BUDGET_S} s per 1000 scenes")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
