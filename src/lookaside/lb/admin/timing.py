"""Times ``GetBackend`` for the latency histogram, at the cost of a few hundred instructions.

Two choices keep the pick path as cheap as it was (measured: see the README's
"Operating lookaside"):

* The servicer's bound ``GetBackend`` is wrapped once, at start-up, before it is
  registered with the server. A gRPC server interceptor would have done the same
  with no code in the servicer, but grpc aio runs every interceptor for every
  call of every method, which cost about 34,000 instructions per GetBackend
  (3.5 % of the whole call) where this costs about one coroutine frame.
* :class:`CheapHistogram` keeps plain counts per bucket (``bisect`` in C, no
  lock: everything runs on the event loop thread) and is exported at scrape
  time, instead of ``prometheus_client.Histogram.observe``'s Python loop over
  the buckets under a lock.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import grpc
from prometheus_client.core import HistogramMetricFamily

#: The servicer method's shape: (request, context) -> reply.
Method = Callable[[Any, Any], Awaitable[Any]]


class CheapHistogram:
    """Counts per bucket and label value (here: the gRPC status code), exported on scrape."""

    def __init__(self, name: str, documentation: str, label: str, bounds: Sequence[float]):
        self.name = name
        self.documentation = documentation
        self.label = label
        self.bounds = tuple(sorted(bounds))
        self._series: dict[str, tuple[list[int], list[float]]] = {}  # value -> (counts, [sum])

    def observe(self, value: str, seconds: float) -> None:
        series = self._series.get(value)
        if series is None:
            series = self._series[value] = ([0] * (len(self.bounds) + 1), [0.0])
        series[0][bisect.bisect_left(self.bounds, seconds)] += 1
        series[1][0] += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, (counts, total) in self._series.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            family.add_metric([value], buckets, total[0])
        yield family


def timed(method: Method, histogram: CheapHistogram) -> Method:
    """``method`` observing its duration in ``histogram``, labelled by status code."""
    clock = time.perf_counter
    observe = histogram.observe

    async def call(request: Any, context: Any) -> Any:
        started = clock()
        try:
            reply = await method(request, context)
        except BaseException:
            code = context.code()
            observe(
                code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN", clock() - started
            )
            raise
        observe("OK", clock() - started)
        return reply

    return call


def time_get_backend(servicer: object, histogram: CheapHistogram) -> None:
    """Wrap ``servicer.GetBackend`` (call before the servicer is added to a server)."""
    setattr(servicer, "GetBackend", timed(servicer.GetBackend, histogram))  # type: ignore[attr-defined]  # noqa: B010
