"""``lookaside lb``: run the LB server."""

from __future__ import annotations

import argparse

from lookaside import policies, serving
from lookaside.lb import policy_flags
from lookaside.lb import server as lb_server
from lookaside.lb.store import StoreConfig
from lookaside.lb.store.config import MEMORY, etcd_endpoints
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
    parser.add_argument("--host", default=_DEFAULTS.host, help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=_DEFAULTS.port,
        help="port to listen on (0 = any free port, logged)",
    )
    parser.add_argument(
        "--policy",
        default=_DEFAULTS.policy,
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
        default=_DEFAULTS.ttl,
        help="seconds a backend may go without reporting before it is evicted",
    )
    parser.add_argument(
        "--report-interval",
        type=float,
        default=_DEFAULTS.report_interval,
        help="how often backends are told to report load (seconds; below --ttl)",
    )
    parser.add_argument(
        "--max-backends",
        type=int,
        default=_DEFAULTS.max_backends,
        help="most backends one service may have",
    )
    parser.add_argument(
        "--max-streams",
        type=int,
        default=_DEFAULTS.max_streams,
        help="most load streams open at once",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=_DEFAULTS.max_message_bytes,
        help="largest request message the LB accepts",
    )
    parser.add_argument(
        "--watch-min-gap",
        type=float,
        default=_DEFAULTS.watch_min_gap,
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
    parser.add_argument(
        "--admin-port",
        type=int,
        default=_DEFAULTS.admin_port,
        help="serve HTTP here: /metrics (Prometheus), /healthz, /readyz and a live status "
        "page at / (0 = any free port, logged; unset = no admin port)",
    )
    parser.add_argument(
        "--admin-host", default=_DEFAULTS.admin_host, help="address the admin port listens on"
    )
    add_store_arguments(parser)
    policy_flags.add_policy_arguments(parser)
    add_xds_arguments(parser)
    add_token_flags(parser, backend=True, client=True)
    add_tls_flags(parser, serves=True, dials=False)


def parse_store(text: str) -> str:
    if text != MEMORY:
        try:
            etcd_endpoints(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = StoreConfig()
    group = parser.add_argument_group("store (several LB replicas)")
    group.add_argument(
        "--store",
        type=parse_store,
        default=defaults.url,
        metavar="memory|etcd://HOST:PORT[,HOST:PORT...]",
        help="where membership lives: this process only (memory, the default), or etcd, "
        "shared by every LB replica given the same --store and --store-prefix; list "
        "every etcd member",
    )
    group.add_argument(
        "--store-prefix",
        default=defaults.prefix,
        help="etcd key prefix of this LB fleet (fleets sharing one etcd use their own)",
    )
    group.add_argument(
        "--load-share-interval",
        type=float,
        default=defaults.load_share_interval,
        help="etcd store: seconds between two batched writes of the loads this replica "
        "heard; other replicas pick on loads about this old",
    )


def store_config_from_args(args: argparse.Namespace) -> StoreConfig:
    return StoreConfig(
        url=args.store,
        prefix=args.store_prefix,
        load_share_interval=args.load_share_interval,
    )


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
        "--xds-rate-smoothing",
        type=float,
        default=defaults.rate_smoothing,
        help="least_load/p2c: seconds over which calls/s and busy share become a service "
        "rate (shorter while a backend has served for less)",
    )
    group.add_argument(
        "--xds-queue-gain",
        type=float,
        default=defaults.queue_gain,
        help="least_load/p2c: exponent cutting the weight of a backend that queues (0: none)",
    )
    group.add_argument(
        "--xds-adapt-period",
        type=float,
        default=defaults.adapt_period,
        help="least_load/p2c without reported rates: seconds for weights to move e-fold "
        "towards equal load",
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
        rate_smoothing=args.xds_rate_smoothing,
        queue_gain=args.xds_queue_gain,
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
        admin_host=args.admin_host,
        admin_port=args.admin_port,
        store=store_config_from_args(args),
        xds=xds_config_from_args(args),
    )
    return serving.run(lb_server.serve(config))
