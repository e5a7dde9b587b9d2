"""``lookaside demo``: an LB, three backends and a few requests, all on loopback."""

from __future__ import annotations

import argparse

from lookaside import policies
from lookaside.bench.demo import run_demo

DESCRIPTION = "Start an LB and 3 backends on loopback, send a few requests, show who served what."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default="round_robin", choices=sorted(policies.POLICIES))
    parser.add_argument("--backends", type=int, default=3, help="backends to start")
    parser.add_argument("--requests", type=int, default=9, help="requests to send")


def run(args: argparse.Namespace) -> int:
    return run_demo(args.policy, args.backends, args.requests)
