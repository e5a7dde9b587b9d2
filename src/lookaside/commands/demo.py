"""``lookaside demo``: an LB, three backends and a few requests, all on loopback."""

from __future__ import annotations

import argparse

from lookaside import policies
from lookaside.bench.demo import run_demo

DESCRIPTION = "Start an LB and 3 backends on loopback, send a few requests, show who served what."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        default="round_robin",
        choices=sorted(policies.POLICIES),
        help="how the LB chooses a backend for each request",
    )
    parser.add_argument("--backends", type=int, default=3, help="backends to start (at least 1)")
    parser.add_argument("--requests", type=int, default=9, help="requests to send (at least 1)")
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the processes' log folder (by default it is removed unless the demo fails)",
    )


def run(args: argparse.Namespace) -> int:
    if args.backends < 1:
        raise ValueError(f"--backends: {args.backends} must be at least 1")
    if args.requests < 1:
        raise ValueError(f"--requests: {args.requests} must be at least 1")
    return run_demo(args.policy, args.backends, args.requests, keep_logs=args.keep_logs)
