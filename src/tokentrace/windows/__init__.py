"""Windowed metrics: spans folded into time buckets, queried over any window from 10 s to 30 days.

A :class:`WindowAggregator` keeps, per time bucket and per series (everything; each model,
provider and trace name; each model x provider x name combination), the span and error counts,
the prompt/completion token sums, the exact cost of the spans that have one and how many they
are, and latency bins 2% wide with the least and greatest latency (a mergeable sketch, so every
percentile is within 1% of the exact value, and exact at either end).

Spans are placed by their ``ended_at``, so spans that arrive late land in the right bucket.
History (a store's spans, at start-up) is taken in with ``load``, which builds each level's
buckets once rather than one late second at a time.
Buckets live at seven resolutions (1 s, 3 s, 15 s, 1 min, 5 min, 30 min, 3 h); each is kept just
long enough that a window's left edge can be placed within ``max(1 s, 1%)`` of the window, and a
query adds up the few dozen coarsest buckets that tile the window. Windows asked for again (alert
rules, dashboards) are kept up to date incrementally.

Memory is bounded by buckets x series, never by the number of spans: at most 3,200 buckets per
series (306 at 1 s, 510 at 3 s, 408 at 15 s, 510 at 1 min, 612 at 5 min, 612 at 30 min, 242 at
3 h), each one immutable ``bytes``: a 96-byte header and 4 bytes per latency bin in use (at most
~1,230 bins). Series holding the same spans share one; the 1 s and 3 s buckets keep only the
model x provider x name combinations, whose number is capped (``max_series``), and their total.
"""

from .aggregator import WindowAggregator
from .buckets import MAX_WINDOW
from .sketch import LatencySketch
from .snapshot import METRICS, WindowSnapshot

__all__ = ["MAX_WINDOW", "METRICS", "LatencySketch", "WindowAggregator", "WindowSnapshot"]
