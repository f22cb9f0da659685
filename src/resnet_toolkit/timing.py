"""Interleaved timing: several ways of doing one thing, timed in turn within each round, compared as paired ratios."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


def synchronize(device: str) -> None:
    """Wait for queued device work so that wall-clock times are complete."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


@dataclass
class Interleaved:
    """Per-round seconds per call for several contenders timed in turn within each round."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        """Median seconds per call of `name`."""
        return statistics.median(self.seconds[name])

    def ratio(self, name: str, reference: str) -> float:
        """Median over rounds of the paired speed ratio `name` / `reference` (> 1: `name` is faster)."""
        return statistics.median(r / n for n, r in zip(self.seconds[name], self.seconds[reference], strict=True))

    def best_ratio(self, name: str, reference: str) -> float:
        """Speed ratio of the fastest rounds of each: the least disturbed by other load on the machine."""
        return min(self.seconds[reference]) / min(self.seconds[name])

    def ratio_spread(self, name: str, reference: str) -> tuple[float, float]:
        """Smallest and largest paired ratio over the rounds."""
        ratios = [r / n for n, r in zip(self.seconds[name], self.seconds[reference], strict=True)]
        return min(ratios), max(ratios)


def interleave(
    contenders: dict[str, Callable[[], object]], *, rounds: int, calls: int, device: str = "cpu"
) -> Interleaved:
    """Time each contender for `calls` calls per round, rotating the order every round (ABC, BCA, CAB, …).

    Each contender makes one untimed call before its timed ones, so it is measured warm (its weights in cache) as
    in steady use, whichever contender ran before it.
    """
    result = Interleaved({name: [] for name in contenders})
    names = list(contenders)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            fn = contenders[name]
            fn()
            synchronize(device)
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            synchronize(device)
            result.seconds[name].append((time.perf_counter() - start) / calls)
    return result
