"""``lookaside backend``: run one backend server."""

from __future__ import annotations

import argparse

from lookaside import serving
from lookaside.backend import server as backend_server
from lookaside.backend.compute import WorkMode
from lookaside.backend.load_source import LoadMode
from lookaside.security import AuthTokens, TlsConfig, add_tls_flags, add_token_flags

DESCRIPTION = (
    "Run the demo backend: serves lookaside.v1.Compute (reverse a string after simulated "
    "work) through lookaside's BackendAgent, the same agent your own Python server can use: "
    "it registers with the LB, streams load reports, follows its health, answers ORCA "
    "(per-call trailer and the OpenRcaService stream), re-registers if the LB forgets it, and "
    "on SIGTERM/SIGINT deregisters, finishes its tasks in flight and exits 0."
)
DEFAULTS = backend_server.BackendConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lb", default=DEFAULTS.lb, help="the LB server, HOST:PORT")
    parser.add_argument("--host", default=DEFAULTS.host, help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULTS.port,
        help="port to listen on (0 = any free port, registered)",
    )
    parser.add_argument(
        "--advertise-host", default="", help="address clients should dial (default: --host)"
    )
    parser.add_argument("--id", default="", help="unique backend id (default: a random one)")
    parser.add_argument(
        "--service", default=DEFAULTS.service, help="service name to register under"
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULTS.workers, help="tasks served at the same time"
    )
    parser.add_argument(
        "--work-ms",
        type=float,
        default=DEFAULTS.work_ms,
        help="simulated work per task, in milliseconds",
    )
    parser.add_argument(
        "--work-mode",
        choices=[m.value for m in WorkMode],
        default=DEFAULTS.work_mode.value,
        help="sleep = wait without CPU; cpu = burn CPU for the work time",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULTS.max_queue,
        help="tasks that may wait for a worker; beyond it: RESOURCE_EXHAUSTED",
    )
    parser.add_argument(
        "--weight", type=float, default=DEFAULTS.weight, help="static weight for weighted policies"
    )
    parser.add_argument(
        "--report-interval",
        type=float,
        default=DEFAULTS.report_interval,
        help="seconds between load reports when nothing changes (they renew the lease)",
    )
    parser.add_argument(
        "--report-min-gap",
        type=float,
        default=DEFAULTS.report_min_gap,
        help="queue changes are reported at once, but no more often than this (seconds)",
    )
    parser.add_argument(
        "--load",
        choices=[m.value for m in LoadMode],
        default=DEFAULTS.load_mode.value,
        help="real = (running + queued) / workers; simulated = a random walk as in the seed",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=DEFAULTS.drain_seconds,
        help="on shutdown, keep serving this long after deregistering",
    )
    parser.add_argument(
        "--admin-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics on this port (0 = any free port; None = no endpoint)",
    )
    add_token_flags(parser, backend=True)
    add_tls_flags(parser, serves=True, dials=True)


def run(args: argparse.Namespace) -> int:
    config = backend_server.BackendConfig(
        lb=args.lb,
        host=args.host,
        port=args.port,
        advertise_host=args.advertise_host,
        id=args.id,
        service=args.service,
        workers=args.workers,
        work_ms=args.work_ms,
        work_mode=WorkMode(args.work_mode),
        max_queue=args.max_queue,
        weight=args.weight,
        report_interval=args.report_interval,
        report_min_gap=args.report_min_gap,
        load_mode=LoadMode(args.load),
        drain_seconds=args.drain_seconds,
        token=AuthTokens.from_args(args).backend,
        tls=TlsConfig.from_args(args),
        admin_port=args.admin_port,
    )
    return serving.run(backend_server.serve(config))
