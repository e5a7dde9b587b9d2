"""Command-line flags that tune the policies and outlier ejection of ``lookaside lb``.

Kept apart from the command module so the flag names, their defaults and the
config objects they build live in one place.
"""

from __future__ import annotations

import argparse
from typing import Any

from lookaside.lb.outlier import OutlierConfig
from lookaside.policies import PeakEwmaConfig, PrequalConfig, RingHashConfig, WrrConfig
from lookaside.policies.least_load import DEFAULT_TOLERANCE

_WRR = WrrConfig()
_RING = RingHashConfig()
_PREQUAL = PrequalConfig()
_PEAK = PeakEwmaConfig()
_OUTLIER = OutlierConfig()


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("policy tuning")
    group.add_argument(
        "--least-load-tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="least_load: loads this close count as a tie, broken at random",
    )
    group.add_argument(
        "--wrr-blackout",
        type=float,
        default=_WRR.blackout_period,
        help="weighted_round_robin: seconds of reports before a new weight is used (gRFC A58)",
    )
    group.add_argument(
        "--wrr-expiration",
        type=float,
        default=_WRR.weight_expiration_period,
        help="weighted_round_robin: seconds without reports after which a weight is dropped",
    )
    group.add_argument(
        "--wrr-error-penalty",
        type=float,
        default=_WRR.error_utilization_penalty,
        help="weighted_round_robin: weight = qps / (utilization + eps/qps * PENALTY)",
    )
    group.add_argument(
        "--ring-points",
        type=int,
        default=_RING.points_per_backend,
        help="ring_hash: points on the ring per backend of the smallest weight",
    )
    group.add_argument(
        "--prequal-pool-size",
        type=int,
        default=_PREQUAL.pool_size,
        help="prequal: most probes (backend reports) kept in the pool (paper: 16)",
    )
    group.add_argument(
        "--prequal-max-age",
        type=float,
        default=_PREQUAL.max_age,
        help="prequal: seconds after which a report leaves the pool (paper: 1; two report "
        "intervals here)",
    )
    group.add_argument(
        "--prequal-rif-quantile",
        type=float,
        default=_PREQUAL.rif_quantile,
        help="prequal: a backend is hot above this quantile of the pool's requests in "
        "flight (paper: 0.84)",
    )
    group.add_argument(
        "--prequal-max-reuse",
        type=int,
        default=_PREQUAL.max_reuse,
        help="prequal: most picks one report may serve when the pool holds every backend",
    )
    group.add_argument(
        "--peak-ewma-decay",
        type=float,
        default=_PEAK.decay_time,
        help="peak_ewma: seconds of the latency average's time constant (Finagle: 10)",
    )
    outlier = parser.add_argument_group("outlier ejection (fed by client stats)")
    outlier.add_argument(
        "--outlier-consecutive-failures",
        type=int,
        default=_OUTLIER.consecutive_failures,
        help="eject a backend after this many failed calls in a row (0 = never)",
    )
    outlier.add_argument(
        "--outlier-base-ejection",
        type=float,
        default=_OUTLIER.base_ejection_time,
        help="seconds of the first ejection; each repeat adds as much again",
    )
    outlier.add_argument(
        "--outlier-max-percent",
        type=float,
        default=_OUTLIER.max_ejection_percent,
        help="most backends of a service ejected at once, in percent (at least one)",
    )
    outlier.add_argument(
        "--outlier-interval",
        type=float,
        default=_OUTLIER.interval,
        help="seconds between success-rate judgements",
    )


def policy_options_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per policy name, the constructor options the flags ask for."""
    return {
        "least_load": {"tolerance": args.least_load_tolerance},
        "weighted_round_robin": {
            "config": WrrConfig(
                blackout_period=args.wrr_blackout,
                weight_expiration_period=args.wrr_expiration,
                error_utilization_penalty=args.wrr_error_penalty,
            )
        },
        "ring_hash": {"config": RingHashConfig(points_per_backend=args.ring_points)},
        "prequal": {
            "config": PrequalConfig(
                pool_size=args.prequal_pool_size,
                max_age=args.prequal_max_age,
                rif_quantile=args.prequal_rif_quantile,
                max_reuse=args.prequal_max_reuse,
            )
        },
        "peak_ewma": {"config": PeakEwmaConfig(decay_time=args.peak_ewma_decay)},
    }


def outlier_config_from_args(args: argparse.Namespace) -> OutlierConfig:
    return OutlierConfig(
        consecutive_failures=args.outlier_consecutive_failures,
        base_ejection_time=args.outlier_base_ejection,
        max_ejection_percent=args.outlier_max_percent,
        interval=args.outlier_interval,
    )
