"""Connected components of a label image, by row runs and union-find (no SciPy needed).

Pixels connect 4-wise when both are valid and carry the same label. Work is vectorised per pixel; the
Python loop only walks the (few hundred) vertical run links, which keeps a 128×128 image well under 1 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Component:
    id: int  # value of this component's pixels in `Components.ids`
    label: int
    area: int
    x0: int  # inclusive pixel bounds
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> int:
        return self.y1 - self.y0 + 1


@dataclass(frozen=True)
class Components:
    items: list[Component]  # largest first
    ids: np.ndarray  # (H, W) int32 component id per pixel, -1 outside every component


def _find(parent: list[int], i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        parent[i], i = root, parent[i]
    return root


def connected_components(labels: np.ndarray, valid: np.ndarray, min_area: int = 1) -> Components:
    """Components of equal-label valid pixels in a 2-D `labels` array; those under `min_area` are dropped."""
    if labels.ndim != 2 or labels.shape != valid.shape:
        raise ValueError(f"labels {labels.shape} and valid {valid.shape} must be the same 2-D shape")
    h, w = labels.shape
    ids = np.full((h, w), -1, dtype=np.int32)
    flat_lab, flat_valid = labels.ravel(), valid.ravel()
    if not flat_valid.any():
        return Components([], ids)
    starts = np.ones(h * w, dtype=bool)
    starts[1:] = (flat_lab[1:] != flat_lab[:-1]) | (flat_valid[1:] != flat_valid[:-1])
    starts[::w] = True  # runs never wrap across rows
    run_of = (np.cumsum(starts) - 1).reshape(h, w)
    n_runs = int(run_of[-1, -1]) + 1

    linked = valid[:-1] & valid[1:] & (labels[:-1] == labels[1:])
    links = np.unique(run_of[:-1][linked].astype(np.int64) * n_runs + run_of[1:][linked])
    parent = list(range(n_runs))
    for a, b in zip((links // n_runs).tolist(), (links % n_runs).tolist()):
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    ys, xs = np.nonzero(valid)
    uniq, inverse = np.unique(run_of[ys, xs], return_inverse=True)
    roots = np.array([_find(parent, r) for r in uniq.tolist()])[inverse] if links.size else uniq[inverse]
    _, comp_of, areas = np.unique(roots, return_inverse=True, return_counts=True)
    keep = areas[comp_of] >= min_area
    ys, xs, comp_of = ys[keep], xs[keep], comp_of[keep]
    if not ys.size:
        return Components([], ids)
    order = np.argsort(comp_of, kind="stable")
    ys, xs, comp_of = ys[order], xs[order], comp_of[order]
    bounds = np.flatnonzero(np.r_[True, comp_of[1:] != comp_of[:-1]])
    ids[ys, xs] = np.repeat(np.arange(bounds.size, dtype=np.int32), np.diff(np.r_[bounds, ys.size]))
    items = [
        Component(i, int(labels[y, x]), int(a), int(x0), int(y0), int(x1), int(y1))
        for i, (y, x, a, x0, y0, x1, y1) in enumerate(
            zip(
                ys[bounds],
                xs[bounds],
                np.diff(np.r_[bounds, ys.size]),
                np.minimum.reduceat(xs, bounds),
                np.minimum.reduceat(ys, bounds),
                np.maximum.reduceat(xs, bounds),
                np.maximum.reduceat(ys, bounds),
            )
        )
    ]
    return Components(sorted(items, key=lambda c: -c.area), ids)
