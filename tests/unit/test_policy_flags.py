"""The tuning flags build the config objects the balancer passes on."""

from __future__ import annotations

import argparse

import pytest

from lookaside.lb.balancer import Balancer
from lookaside.lb.policy_flags import (
    add_policy_arguments,
    outlier_config_from_args,
    policy_options_from_args,
)
from lookaside.lb.registry import InMemoryRegistry


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_policy_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_are_the_documented_ones() -> None:
    options = policy_options_from_args(parse())
    assert options["weighted_round_robin"]["config"].blackout_period == 10.0
    assert options["ring_hash"]["config"].points_per_backend == 256
    assert outlier_config_from_args(parse()).consecutive_failures == 5


def test_flags_reach_every_policy() -> None:
    args = parse("--wrr-blackout", "2", "--ring-points", "64", "--outlier-max-percent", "50")
    options = policy_options_from_args(args)
    assert options["weighted_round_robin"]["config"].blackout_period == 2.0
    assert options["ring_hash"]["config"].points_per_backend == 64
    assert outlier_config_from_args(args).max_ejection_percent == 50.0
    for policy in ("least_load", "weighted_round_robin", "ring_hash", "p2c", "round_robin"):
        Balancer(InMemoryRegistry(), policy, policy_options=options)


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError):
        policy_options_from_args(parse("--wrr-blackout", "-1"))
