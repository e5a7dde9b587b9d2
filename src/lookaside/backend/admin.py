"""``--admin-port``: the backend's own Prometheus ``/metrics``, from the agent's figures.

A custom collector reads the agent at scrape time (no per-call metric
updates on the hot path), and ``prometheus_client`` serves it on a thread of
its own. Names follow Prometheus conventions (``lookaside_backend_`` prefix,
``_total`` for counters, base units).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from lookaside.v1 import load_balancer_pb2 as pb

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from lookaside.backend.agent import BackendAgent


class AgentCollector(Collector):
    def __init__(self, agent: BackendAgent) -> None:
        self._agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self._agent
        in_flight, finished, failed, busy, latency_ms = agent.stats.totals()
        labels = ["backend", "service"]
        values = [agent.id, agent.config.service]

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(f"lookaside_backend_{name}", doc, labels=labels)
            family.add_metric(values, value)
            return family

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(f"lookaside_backend_{name}", doc, labels=labels)
            family.add_metric(values, value)
            return family

        yield gauge("requests_in_flight", "Calls being served now.", in_flight)
        yield counter("requests", "Calls finished, failed ones included.", finished)
        yield counter("request_errors", "Calls that ended with a non-OK status.", failed)
        yield counter("busy_seconds", "Call-seconds spent serving finished calls.", busy)
        yield gauge("latency_seconds_ewma", "Recent call latency (EWMA).", latency_ms / 1000)
        yield gauge(
            "serving",
            "1 while the backend is handed out (SERVING).",
            1.0 if agent.serving_state == pb.SERVING else 0.0,
        )
        registered = agent.reporter is not None and agent.reporter.registered.is_set()
        yield gauge("registered", "1 while the LB holds this backend's lease.", float(registered))


def serve_metrics(agent: BackendAgent, host: str, port: int) -> int:
    """Serve ``/metrics`` on ``host:port`` (0 = any free port); returns the port."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)
