"""Loading the next steps' samples in worker processes while the model trains on this one.

On a GPU the model's step takes less time than rendering, decoding and tokenising its samples in the
training process (measured: 0.26 s for a 64-sample shapes step on one core). The mixture's plan — which
record each sample is — stays in the training process: it is cheap, and it is the data position a
checkpoint saves. Only loading moves to `workers` processes of a torch DataLoader, which returns steps
in order, so a run sees exactly the samples it would see loading them itself.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from tuna.data.mixture import DataStream, LoadedStep

PlannedStep = tuple[int, list[tuple[int, int]], list[int]]  # (step, plan, cursors after the step)


class _Plans(Sampler):
    """Plans steps start … stop − 1 in order on a copy of the stream's position."""

    def __init__(self, stream: DataStream, start: int, stop: int):
        self.stream, self.start, self.stop = stream, start, stop

    def __iter__(self) -> Iterator[PlannedStep]:
        cursors = list(self.stream.state.cursors)
        for step in range(self.start, self.stop):
            plan = self.stream.plan(step, cursors)
            yield step, plan, list(cursors)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class _Loads(Dataset):
    def __init__(self, stream: DataStream, micro_ids: list[int], micro_batch: int):
        self.stream, self.micro_ids, self.micro_batch = stream, micro_ids, micro_batch

    def __getitem__(self, planned: PlannedStep) -> LoadedStep:
        step, plan, cursors = planned
        loaded = self.stream.load_step(step, plan, self.micro_ids, self.micro_batch)
        loaded.cursors = cursors
        return loaded


def default_workers(device: torch.device) -> int:
    """0 on the CPU (its cores run the model), else this process's share of the cores, less one, up to 8."""
    if device.type == "cpu":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # set by torchrun
    return max(0, min(8, cores // max(1, processes) - 1))


def prefetched_steps(
    stream: DataStream, start: int, stop: int, micro_ids: list[int], micro_batch: int, workers: int = 0
) -> Iterator[LoadedStep]:
    """Steps start … stop − 1 of this process, loaded ahead by `workers` processes (0: here, on demand).

    Give each step to `stream.consume` when training on it: that moves the stream's position (what a
    checkpoint saves) to the end of that step, not to wherever the workers have read ahead to.
    """
    if workers < 0:
        raise ValueError(f"data.workers must be 0 or more, got {workers}")
    plans, loads = _Plans(stream, start, stop), _Loads(stream, micro_ids, micro_batch)
    if workers == 0:
        yield from (loads[p] for p in plans)
        return
    # fork: workers inherit the sources and the tokenizer's encode function without pickling them.
    context = (
        multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    )
    loader = DataLoader(
        loads, batch_size=None, sampler=plans, num_workers=workers, collate_fn=_keep,
        prefetch_factor=2, multiprocessing_context=context,
    )  # fmt: skip
    yield from loader


def _keep(item: LoadedStep) -> LoadedStep:
    return item
