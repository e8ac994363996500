"""Task mixing by ratios, sharded across processes, with counted bad-record skipping.

Global sample i of the run (step · global_batch + j) draws its source from the weights active at its
step with an RNG seeded by (seed, i): a pure function, the same in every process and after a resume.
Each source then hands out records in order of its own cursor (finite sources reshuffle every epoch,
seeded by (seed, source, epoch)). Every process advances every cursor, but loads only the samples of
its own micro-batches — so one process and N processes see exactly the same global batch.

A bad record is skipped with a warning naming its file and line and replaced by the next record of the
same source (in that epoch's order); the run stops once the share of bad records read passes
`max_bad_fraction` (after a grace of `bad_grace` records, so one early bad record is not fatal).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from tuna.data.formats import BadRecord, Formatter
from tuna.sequence import Segment, build_sample

log = logging.getLogger(__name__)
MAX_RETRIES = 100  # consecutive bad records of one source before giving up on it


class Source(Protocol):
    kind: str

    def __len__(self) -> int: ...

    def get(self, index: int, fmt: Formatter) -> list[Segment]: ...


@dataclass(frozen=True)
class Entry:
    source: Source
    weight: float
    start: int = 0
    stop: int | None = None
    name: str = ""

    def active(self, step: int) -> bool:
        return self.start <= step and (self.stop is None or step < self.stop)


class TooManyBadRecords(ValueError):
    pass


@dataclass
class DataState:
    """The data position: per-source cursors and the bad-record tally (summed over processes)."""

    cursors: list[int]
    read: int = 0
    bad: int = 0
    bad_by_source: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cursors": list(self.cursors),
            "read": self.read,
            "bad": self.bad,
            "bad_by_source": self.bad_by_source,
        }


@dataclass
class LoadedStep:
    """One step's micro-batches for this process, with what loading them read and skipped."""

    step: int
    batches: list[list[list[Segment]]]
    read: int
    bad: int
    bad_by_source: list[int]
    cursors: list[int] | None = None  # the data position after this step (set by a prefetcher)


class DataStream:
    def __init__(
        self,
        entries: list[Entry],
        fmt: Formatter,
        seed: int,
        global_batch: int,
        pack_len: int | None = None,
        max_bad_fraction: float = 0.05,
        bad_grace: int = 50,
        tokens=None,
        vae=None,
    ):
        if not entries:
            raise ValueError("the data mixture is empty")
        self.entries, self.fmt, self.seed, self.global_batch = entries, fmt, seed, global_batch
        self.pack_len, self.tokens, self.vae = pack_len, tokens, vae
        self.max_bad_fraction, self.bad_grace = max_bad_fraction, bad_grace
        self.state = DataState([0] * len(entries), bad_by_source=[0] * len(entries))
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    # ------------------------------------------------------------------ which record each sample is

    def choose(self, step: int, sample: int) -> int:
        """The entry that global sample `sample` (of step `step`) is drawn from."""
        active = [i for i, e in enumerate(self.entries) if e.active(step) and e.weight > 0]
        if not active:
            raise ValueError(f"no data source is active at step {step}; check the mixture's start/stop steps")
        weights = np.array([self.entries[i].weight for i in active])
        u = np.random.default_rng([self.seed, sample]).random()
        return active[
            int(
                np.searchsorted(np.cumsum(weights / weights.sum()), u, side="right").clip(max=len(active) - 1)
            )
        ]

    def plan(self, step: int, cursors: list[int] | None = None) -> list[tuple[int, int]]:
        """(entry, cursor) for each of the step's global samples; advances `cursors` (default: the
        stream's own position; every process advances it alike)."""
        cursors = self.state.cursors if cursors is None else cursors
        plan = []
        for j in range(self.global_batch):
            e = self.choose(step, step * self.global_batch + j)
            plan.append((e, cursors[e]))
            cursors[e] += 1
        return plan

    def _record_index(self, entry: int, cursor: int) -> tuple[int, int]:
        """(record index, epoch) of the entry's `cursor`-th read."""
        n = len(self.entries[entry].source)
        if n >= 2**62:  # endless sources are indexed directly
            return cursor, 0
        epoch, pos = divmod(cursor, n)
        key = (entry, epoch)
        if key not in self._perms:
            self._perms = {k: v for k, v in self._perms.items() if k[0] != entry}  # keep one epoch per source
            self._perms[key] = np.random.default_rng([self.seed, entry, epoch]).permutation(n)
        return int(self._perms[key][pos]), epoch

    # ------------------------------------------------------------------ loading

    def load(self, entry: int, cursor: int) -> tuple[list[Segment], int, int]:
        """The sample at (entry, cursor): (segments, records read, bad records skipped). It changes no
        state (worker processes call it: see tuna.data.prefetch)."""
        src = self.entries[entry].source
        for attempt in range(MAX_RETRIES):
            index, epoch = self._record_index(entry, cursor + attempt)
            try:
                segments = src.get(index, replace(self.fmt, epoch=epoch))
                self._check_length(segments, entry, index)
                return segments, attempt + 1, attempt
            except BadRecord as err:
                log.warning("skipping bad record %s: %s", err.where, err.reason)
        raise TooManyBadRecords(
            f"{MAX_RETRIES} consecutive bad records in data source {self.entries[entry].name}"
        )

    def _check_length(self, segments: list[Segment], entry: int, index: int) -> None:
        if self.pack_len is None or self.tokens is None:
            return
        n = len(build_sample(segments, self.tokens, self.vae).ids)
        if n > self.pack_len:
            raise BadRecord(
                f"{self.entries[entry].name}[{index}]", f"{n} tokens exceed pack_len {self.pack_len}"
            )

    def micro_batches(
        self, step: int, micro_ids: list[int], micro_batch: int
    ) -> tuple[list[list[list[Segment]]], int, int]:
        """This process's micro-batches of `step` (by global micro-batch number); plus read / bad counts."""
        loaded = self.load_step(step, self.plan(step), micro_ids, micro_batch)  # plan() moved the position
        self.consume(loaded)
        return loaded.batches, loaded.read, loaded.bad

    def load_step(
        self, step: int, plan: list[tuple[int, int]], micro_ids: list[int], micro_batch: int
    ) -> LoadedStep:
        """Load this process's share of a planned step; touches no state (worker processes run it)."""
        batches, read, bad, bad_by_source = [], 0, 0, [0] * len(self.entries)
        for m in micro_ids:
            samples = []
            for entry, cursor in plan[m * micro_batch : (m + 1) * micro_batch]:
                segments, r, b = self.load(entry, cursor)
                samples.append(segments)
                read, bad = read + r, bad + b
                bad_by_source[entry] += b
            batches.append(samples)
        return LoadedStep(step, batches, read, bad, bad_by_source)

    def consume(self, loaded: LoadedStep) -> None:
        """Count a loaded step's bad records; a prefetched one (`tuna.data.prefetch`) also sets the data
        position to the end of that step."""
        if loaded.cursors is not None:
            self.state.cursors = list(loaded.cursors)
        self.state.bad_by_source = [a + b for a, b in zip(self.state.bad_by_source, loaded.bad_by_source)]

    def account(self, read: int, bad: int) -> None:
        """Add this step's (process-summed) counts and stop when the bad share passes the bound."""
        self.state.read += read
        self.state.bad += bad
        s = self.state
        if s.read >= self.bad_grace and s.bad > self.max_bad_fraction * s.read:
            names = ", ".join(f"{e.name}: {n}" for e, n in zip(self.entries, s.bad_by_source) if n)
            raise TooManyBadRecords(
                f"{s.bad} of {s.read} records read were bad ({s.bad / s.read:.1%}), more than "
                f"data.max_bad_fraction={self.max_bad_fraction:g}; by source: {names}. Fix the data or raise the bound."
            )

    def load_state(self, state: dict[str, Any]) -> None:
        if len(state["cursors"]) != len(self.entries):
            raise ValueError(
                f"the checkpoint's data position has {len(state['cursors'])} sources; this run has {len(self.entries)}"
            )
        self.state = DataState(
            list(state["cursors"]), state["read"], state["bad"], list(state["bad_by_source"])
        )
