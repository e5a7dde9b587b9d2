"""``lookaside lb``: run the LB server."""

from __future__ import annotations

import argparse

from lookaside import policies, serving
from lookaside.lb import policy_flags
from lookaside.lb import server as lb_server
from lookaside.lb.xds.config import XdsConfig
from lookaside.security import AuthTokens, TlsConfig, add_tls_flags, add_token_flags

_DEFAULTS = lb_server.LbConfig()

DESCRIPTION = (
    "Run the LB server. Backends register with it and report their load; clients call "
    "GetBackend and get the best backend under the policy. Serves grpc.health.v1 "
    "(SERVING once ready) and server reflection."
)


def parse_service_policy(text: str) -> tuple[str, str]:
    service, sep, policy = text.partition("=")
    if not sep or not service or policy not in policies.POLICIES:
        raise argparse.ArgumentTypeError(
            f"expected SERVICE=POLICY with POLICY one of {', '.join(policies.POLICIES)}"
        )
    return service, policy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The LB's own flags, then policy tuning, then security."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=50051, help="port to listen on (0 = any free port, logged)"
    )
    parser.add_argument(
        "--policy",
        default="least_load",
        choices=sorted(policies.POLICIES),
        help="how to choose a backend for GetBackend (default for every service)",
    )
    parser.add_argument(
        "--service-policy",
        action="append",
        default=[],
        type=parse_service_policy,
        metavar="SERVICE=POLICY",
        help="use another policy for one service (repeatable)",
    )
    parser.add_argument(
        "--ttl",
        type=float,
        default=5.0,
        help="seconds a backend may go without reporting before it is evicted",
    )
    parser.add_argument(
        "--report-interval",
        type=float,
        default=1.0,
        help="how often backends are told to report load (seconds; below --ttl)",
    )
    parser.add_argument(
        "--max-backends", type=int, default=1024, help="most backends one service may have"
    )
    parser.add_argument(
        "--max-streams", type=int, default=4096, help="most load streams open at once"
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=64 * 1024,
        help="largest request message the LB accepts",
    )
    parser.add_argument(
        "--watch-min-gap",
        type=float,
        default=0.2,
        help="fast path: least seconds between two updates to a WatchBackends subscriber",
    )
    parser.add_argument(
        "--report-budget",
        type=float,
        default=_DEFAULTS.report_budget,
        help="streamed load reports per second the LB ingests at most: backends are told to "
        "report less often as the fleet grows, and the excess is held back and applied "
        "late (never a saturated backend's report, never at the cost of a lease); 0 = no limit",
    )
    parser.add_argument(
        "--min-report-gap",
        type=float,
        default=_DEFAULTS.min_report_gap,
        help="least seconds between two reports of one backend while the budget allows more",
    )
    policy_flags.add_policy_arguments(parser)
    add_xds_arguments(parser)
    add_token_flags(parser, backend=True, client=True)
    add_tls_flags(parser, serves=True, dials=False)


def add_xds_arguments(parser: argparse.ArgumentParser) -> None:
    """How the LB's xDS service (stock gRPC clients dialling xds:///SERVICE) pushes weights."""
    defaults = XdsConfig()
    group = parser.add_argument_group("xDS (stock gRPC clients, see lookaside xds-bootstrap)")
    group.add_argument(
        "--xds-min-gap",
        type=float,
        default=defaults.min_gap,
        help="least seconds between two weight-only pushes per service (joins and leaves "
        "are pushed at once)",
    )
    group.add_argument(
        "--xds-threshold",
        type=float,
        default=defaults.threshold,
        help="push new weights only when a backend's share moved by more than this fraction",
    )
    group.add_argument(
        "--xds-smoothing",
        type=float,
        default=defaults.smoothing,
        help="seconds over which load figures are averaged before they become weights",
    )
    group.add_argument(
        "--xds-adapt-period",
        type=float,
        default=defaults.adapt_period,
        help="least_load/p2c: seconds for weights to move e-fold towards equal load",
    )
    group.add_argument(
        "--xds-load-reporting",
        action=argparse.BooleanOptionalAction,
        default=defaults.load_reporting,
        help="ask stock clients for per-backend call counts (LRS); they feed outlier ejection",
    )


def xds_config_from_args(args: argparse.Namespace) -> XdsConfig:
    return XdsConfig(
        min_gap=args.xds_min_gap,
        threshold=args.xds_threshold,
        smoothing=args.xds_smoothing,
        adapt_period=args.xds_adapt_period,
        load_reporting=args.xds_load_reporting,
    )


def run(args: argparse.Namespace) -> int:
    config = lb_server.LbConfig(
        host=args.host,
        port=args.port,
        policy=args.policy,
        service_policies=dict(args.service_policy),
        ttl=args.ttl,
        report_interval=args.report_interval,
        max_backends=args.max_backends,
        max_streams=args.max_streams,
        max_message_bytes=args.max_message_bytes,
        tokens=AuthTokens.from_args(args),
        tls=TlsConfig.from_args(args),
        policy_options=policy_flags.policy_options_from_args(args),
        outlier=policy_flags.outlier_config_from_args(args),
        watch_min_gap=args.watch_min_gap,
        report_budget=args.report_budget,
        min_report_gap=args.min_report_gap,
        xds=xds_config_from_args(args),
    )
    return serving.run(lb_server.serve(config))
