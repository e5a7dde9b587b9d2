"""``lookaside scale-servers``: start N backends (the seed's scale_servers.py)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lookaside import addresses
from lookaside.bench.fleet import BackendSpec
from lookaside.bench.scale import serve_backends

DESCRIPTION = (
    "Spawn N backend processes with ids backend1..backendN registered with --lb, wait "
    "until all are registered, print them, and stop them all cleanly on Ctrl-C or "
    "SIGTERM. Backends die with this command even when it is SIGKILLed."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--count", type=int, default=10, help="backends to start")
    parser.add_argument(
        "--lb",
        default="127.0.0.1:50051",
        help="the LB server, HOST[:PORT] (port 50051 if left out)",
    )
    parser.add_argument(
        "--base-port",
        type=int,
        default=0,
        help="backend i listens on BASE_PORT + i - 1 (0 = any free port)",
    )
    parser.add_argument("--workers", type=int, default=4, help="tasks each backend serves at once")
    parser.add_argument(
        "--work-ms",
        type=float,
        default=500.0,
        help="simulated work per task (500 ms, as in the original report's experiment)",
    )
    parser.add_argument(
        "--work-mode",
        choices=["sleep", "cpu"],
        default="sleep",
        help="sleep = wait without CPU; cpu = burn CPU",
    )
    parser.add_argument("--service", default="compute", help="service name to register under")
    parser.add_argument(
        "--report-interval",
        type=float,
        default=None,
        help="seconds between load reports (default: the backend's)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for all backends to register"
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="where each backend logs (default: a new temporary directory)",
    )


def run(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise ValueError("-n must be at least 1")
    if args.base_port and not 0 < args.base_port <= 65536 - args.count:
        raise ValueError("--base-port + n must stay within 1..65535")
    args.lb = addresses.lb_target(args.lb)
    addresses.check_resolves(args.lb)
    template = BackendSpec(
        id="",
        workers=args.workers,
        work_ms=args.work_ms,
        work_mode=args.work_mode,
        service=args.service,
        report_interval=args.report_interval,
    )
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="lookaside-scale-servers-"))
    return serve_backends(args.lb, args.count, template, log_dir, args.base_port, args.timeout)
