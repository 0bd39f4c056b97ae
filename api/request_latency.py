"""``deskfleet_http_request_seconds``: every HTTP request's latency, by path, as a Prometheus
histogram.

prometheus_client's ``Histogram.observe`` takes a lock per bucket and per sum and walks the
bounds in Python: with the middleware's label look-up, ~7 us of a small query's ~160 us in
process (`trivial` lost ~3 % of its ratio to it). Every observation here is made on the event
loop's thread, so a count needs no lock: :meth:`RequestLatency.observe` bisects the bounds and
adds one, and the histogram is put together only when /metrics is read (a custom collector,
prometheus_client's public API for exactly this).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

NAME = "deskfleet_http_request_seconds"
OTHER = "other"  # every path not listed: any URL can be requested, one series each would grow


class RequestLatency(Collector):
    def __init__(self, paths: Iterable[str]) -> None:
        self.bounds: tuple[float, ...] = tuple(Histogram.DEFAULT_BUCKETS)  # ends with +Inf
        self._counts = {path: [0] * len(self.bounds) for path in (*sorted(paths), OTHER)}
        self._sums = dict.fromkeys(self._counts, 0.0)

    def observe(self, path: str, seconds: float) -> None:
        if path not in self._counts:
            path = OTHER
        # Prometheus's buckets count what is at most their bound: the first bound >= seconds.
        self._counts[path][bisect_left(self.bounds, seconds)] += 1
        self._sums[path] += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(NAME, "HTTP request latency", labels=["path"])
        for path, counts in self._counts.items():
            cumulative = 0
            buckets = []
            for bound, count in zip(self.bounds, counts, strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), float(cumulative)))
            family.add_metric([path], buckets, self._sums[path])
        yield family
