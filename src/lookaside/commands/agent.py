"""``lookaside agent``: the sidecar for a server in any language."""

from __future__ import annotations

import argparse

from lookaside import serving
from lookaside.backend import sidecar
from lookaside.security import AuthTokens, TlsConfig, add_tls_flags, add_token_flags

DESCRIPTION = (
    "Register a gRPC server that lookaside does not run (Go, Java, Node, a stock Python "
    "server) with the LB and keep its lease. The sidecar follows the target's "
    "grpc.health.v1 (Watch, or Check polled when Watch is missing): while the target is "
    "NOT_SERVING or unreachable the LB keeps it registered but hands it out no more, and "
    "takes it back once it is SERVING. Load comes from the target's ORCA service "
    "(xds.service.orca.v3.OpenRcaService) when it has one. On SIGTERM/SIGINT the sidecar "
    "deregisters the target and exits 0; the target keeps running."
)
EXAMPLE = (
    "example: lookaside agent --lb 127.0.0.1:50051 --target 127.0.0.1:50061 "
    "--service userservice.v1.Echo"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLE
    # Required, but checked in run() so that a missing one gets the one-line error.
    # "%(default)s" (always empty) keeps the help formatter from adding "(default: )".
    parser.add_argument(
        "--lb",
        default="",
        metavar="HOST:PORT",
        help="the LB, or several replicas a:1,b:2 (required)%(default)s",
    )
    parser.add_argument(
        "--target",
        default="",
        metavar="HOST:PORT",
        help="the server to register (required)%(default)s",
    )
    parser.add_argument(
        "--service",
        default="",
        metavar="NAME",
        help="service name clients ask the LB for, e.g. my.pkg.MyService (required)%(default)s",
    )
    parser.add_argument(
        "--id", default="", help="unique backend id (default: the target's HOST:PORT)%(default)s"
    )
    parser.add_argument(
        "--advertise-host",
        default="",
        metavar="HOST",
        help="address clients should dial (default: the --target host)%(default)s",
    )
    parser.add_argument(
        "--health-service",
        default="",
        metavar="NAME",
        help="grpc.health.v1 service name to follow (default: the whole server)%(default)s",
    )
    parser.add_argument(
        "--report-interval",
        type=float,
        default=sidecar.SidecarConfig.report_interval,
        help="seconds between load reports when nothing changes (they renew the lease)",
    )
    add_token_flags(parser, backend=True)
    add_tls_flags(parser, serves=False, dials=True)


def run(args: argparse.Namespace) -> int:
    for flag in ("lb", "target", "service"):
        if not getattr(args, flag):
            raise ValueError(f"--{flag} is required ({EXAMPLE})")
    config = sidecar.SidecarConfig(
        lb=args.lb,
        target=args.target,
        service=args.service,
        id=args.id,
        advertise_host=args.advertise_host,
        health_service=args.health_service,
        report_interval=args.report_interval,
        token=AuthTokens.from_args(args).backend,
        tls=TlsConfig.from_args(args),
    )
    return serving.run(sidecar.serve(config))
