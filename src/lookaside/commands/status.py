"""``lookaside status``: the LB's services and backends as a table (or JSON)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence

from lookaside import addresses
from lookaside.client.fleet_status import ServiceStatus, StatusError, fetch_status
from lookaside.security import AuthTokens, TlsConfig, add_tls_flags, add_token_flags

DESCRIPTION = (
    "Show every service the LB knows, with its policy, and every backend with its state "
    "(serving, down, ejected, draining), load, age of its last report and picks so far. "
    "Reads ListServices and ListBackends; exits 1 with one line when the LB cannot be asked."
)

COLUMNS = ("SERVICE", "POLICY", "BACKEND", "ADDRESS", "STATE", "LOAD", "LAST REPORT", "PICKS")
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: --watch redraws in place


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lb", default="127.0.0.1:50051", help="the LB server, HOST[:PORT] (several: a:1,b:2)"
    )
    parser.add_argument("--service", help="show only this service (default: every service)")
    parser.add_argument(
        "--watch", action="store_true", help="redraw every --interval seconds until Ctrl-C"
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between two redraws with --watch"
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for each answer of the LB"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON for scripts (with --watch: one JSON document per line)",
    )
    add_token_flags(parser, client=True)
    add_tls_flags(parser, serves=False, dials=True)


def table(services: Sequence[ServiceStatus]) -> str:
    """The services and backends as aligned plain-text columns."""
    rows: list[tuple[str, ...]] = []
    for service in services:
        if not service.backends:
            rows.append((service.name, service.policy, "-", "-", "-", "-", "-", "-"))
        for b in service.backends:
            rows.append(
                (
                    service.name,
                    service.policy,
                    b.id,
                    b.address,
                    b.state,
                    f"{b.load:.2f}",
                    f"{b.report_age_seconds:.1f}s ago",
                    str(b.picks),
                )
            )
    if not rows:
        return "no services: no backend is registered with this LB\n"
    widths = [max(len(row[i]) for row in (COLUMNS, *rows)) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in (COLUMNS, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def as_json(lb: str, services: Sequence[ServiceStatus]) -> str:
    return json.dumps({"lb": lb, "services": [s.as_json() for s in services]})


def run(args: argparse.Namespace) -> int:
    lb = addresses.lb_target(args.lb)
    for flag, value in (("--interval", args.interval), ("--timeout", args.timeout)):
        if value <= 0:
            raise ValueError(f"{flag}: {value:g} must be above 0 seconds")
    token = AuthTokens.from_args(args).client
    tls = TlsConfig.from_args(args)
    try:
        while True:
            services = asyncio.run(
                fetch_status(lb, args.service, timeout=args.timeout, token=token, tls=tls)
            )
            text = as_json(lb, services) + "\n" if args.json else table(services)
            if args.watch and not args.json and sys.stdout.isatty():
                text = CLEAR + f"lookaside status  {lb}  {time.strftime('%H:%M:%S')}\n\n" + text
            sys.stdout.write(text)
            sys.stdout.flush()
            if not args.watch:
                return 0
            time.sleep(args.interval)
    except StatusError as error:
        print(f"lookaside status: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
