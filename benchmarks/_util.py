"""Small timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_call_us(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of the wall time per call, in microseconds."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - started) / number * 1e6)
    return statistics.median(runs)


def row(label: str, value: str, target: str = "") -> str:
    line = f"  {label:<58} {value:>16}"
    return f"{line}   {target}" if target else line
