"""`--shard K/N`: one of N CI jobs runs its share of the plan's cells; `edgevt merge` puts the shares back together.

The partition is a function of the plan alone (never of the cache, the host or the clock), so N jobs given the
same command line agree on it without talking to each other. Cells are balanced by expected cost (see cost.py),
not by position: the largest cells are dealt out first, each to the shard with the least work so far (the
longest-processing-time rule), ties broken by plan order and shard number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from edgevt.errors import UsageError
from edgevt.matrix.plan import Cell, MatrixPlan


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as written on the command line
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not match:
            raise UsageError(f"--shard {text!r} is not K/N", "write --shard 1/4 for the first of four shards")
        index, count = int(match[1]), int(match[2])
        if count < 1 or not 1 <= index <= count:
            raise UsageError(f"--shard {text}: K must be between 1 and N", f"the shards of {count or 'N'} are 1/{count or 'N'} … "
                             f"{count or 'N'}/{count or 'N'}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def partition(costs: list[float], count: int) -> list[list[int]]:
    """Indices into `costs`, one list per shard (each in plan order); deterministic for the same input.
    Equal loads go to the shard with fewer cells, so cells that cost nothing (unsupported) are spread too."""
    loads, shards = [0.0] * count, [[] for _ in range(count)]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        target = min(range(count), key=lambda s: (loads[s], len(shards[s]), s))
        loads[target] += costs[i]
        shards[target].append(i)
    return [sorted(s) for s in shards]


def cell_costs(plan: MatrixPlan) -> list[float]:
    from edgevt.matrix.cost import cell_cost

    return [cell_cost(c, plan.specs[c.model]) for c in plan.cells]


def select(plan: MatrixPlan, shard: Shard) -> MatrixPlan:
    """The plan with only this shard's cells; the report keeps the whole plan's cell ids so merge can check coverage."""
    mine = partition(cell_costs(plan), shard.count)[shard.index - 1]
    cells: list[Cell] = [plan.cells[i] for i in mine]
    info = {"index": shard.index, "count": shard.count, "plan_cells": [c.id for c in plan.cells]}
    return replace(plan, cells=cells, shard=info)
