"""HTTP request counts and latencies, kept as plain numbers and exposed at scrape time.

Every request passes through this, so it avoids prometheus-client's per-observation
locks and label lookups: the event loop is the only writer, and the Prometheus families
(``aqi_http_requests_total``, the ``aqi_http_request_duration_seconds`` histogram) are
built from these numbers when ``/metrics`` is scraped. Labels are bounded: route templates
(or ``unmatched``), a fixed set of methods, status codes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector


class HttpStats(Collector):
    """Requests by (route, method, status) and latency histograms by (route, method)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self._rows: dict[tuple[str, str, int], list[float]] = {}
        """Per (route, method, status): a count per bucket (``le`` bound, then +Inf), then
        the sum of the latencies."""

    def slot(self, route: str, method: str, status: int,
             counts: Callable[[str | None], None] | None = None) -> RequestSlot:
        """The numbers of one label set (created at zero), to be kept by the caller: the
        request path looks a slot up once per kind of request."""
        row = self._rows.get((route, method, status))
        if row is None:
            row = self._rows[(route, method, status)] = [0.0] * (len(self.bounds) + 2)
        return RequestSlot(self.bounds, row, counts)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """One request answered."""
        self.slot(route, method, status).record(seconds)

    def count(self, route: str, method: str, status: int) -> int:
        """Requests answered so far with these labels."""
        row = self._rows.get((route, method, status))
        return int(sum(row[:-1])) if row is not None else 0

    def _latencies(self) -> dict[tuple[str, str], list[float]]:
        """The rows summed over statuses: per (route, method)."""
        merged: dict[tuple[str, str], list[float]] = {}
        for (route, method, _), row in self._rows.items():
            total = merged.setdefault((route, method), [0.0] * len(row))
            for i, n in enumerate(row):
                total[i] += n
        return merged

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "aqi_http_requests", "HTTP requests by route template, method and status",
            labels=["route", "method", "status"])
        for (route, method, status), row in sorted(self._rows.items()):
            requests.add_metric([route, method, str(status)], sum(row[:-1]))
        yield requests
        durations = HistogramMetricFamily(
            "aqi_http_request_duration_seconds",
            "Time to answer an HTTP request (streamed bodies included)",
            labels=["route", "method"])
        for (route, method), latency in sorted(self._latencies().items()):
            cumulative, buckets = 0.0, []
            for bound, n in zip((*self.bounds, float("inf")), latency[:-1], strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            durations.add_metric([route, method], buckets, sum_value=latency[-1])
        yield durations


class RequestSlot:
    """One label set's latency row in ``HttpStats`` and, for widget loads and downloads,
    ``counts`` (called with a download's format) moving their own counter."""

    __slots__ = ("bounds", "counts", "row")

    def __init__(self, bounds: tuple[float, ...], row: list[float],
                 counts: Callable[[str | None], None] | None) -> None:
        self.bounds, self.row, self.counts = bounds, row, counts

    def record(self, seconds: float, fmt: str | None = None) -> None:
        """One request answered in ``seconds`` (``fmt``: a download's format)."""
        row = self.row
        row[bisect_left(self.bounds, seconds)] += 1   # first bound >= seconds (le)
        row[-1] += seconds
        if self.counts is not None:
            self.counts(fmt)
