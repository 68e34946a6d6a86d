"""Small timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_call_us(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of the calling thread's CPU time per call, in microseconds."""
    runs = []
    for _ in range(repeat):
        started = time.thread_time()
        for _ in range(number):
            fn()
        runs.append((time.thread_time() - started) / number * 1e6)
    return statistics.median(runs)


def row(label: str, value: str, target: str = "") -> str:
    line = f"  {label:<58} {value:>16}"
    return f"{line}   {target}" if target else line
