"""ShapesBench: programmatic scoring of Tuna's five tasks on the shapes world (see docs/shapes-world.md)."""

from tuna.bench.controls import CONTROLS, make_control
from tuna.bench.detect import DetectedObject, Detection, detect
from tuna.bench.items import BENCH_TASKS, build_items, load_prompt_items
from tuna.bench.protocol import TunaTasks, load_tasks
from tuna.bench.runner import BenchConfig, TaskResult, run_bench

__all__ = [
    "BENCH_TASKS",
    "CONTROLS",
    "BenchConfig",
    "DetectedObject",
    "Detection",
    "TaskResult",
    "TunaTasks",
    "build_items",
    "detect",
    "load_prompt_items",
    "load_tasks",
    "make_control",
    "run_bench",
]
