"""The lab's planning and option handling, without sockets."""

from __future__ import annotations

import argparse
import itertools
import random
import statistics

import pytest

from lookaside.bench.fleet import BackendSpec
from lookaside.bench.load import poisson_arrivals, static_target
from lookaside.bench.runner import (
    BenchOptions,
    backend_specs,
    capacity_rps,
    expected_requests,
    plan,
    slow_count,
)
from lookaside.commands import bench as bench_command
from lookaside.v1 import load_balancer_pb2 as pb


def parse(*argv: str) -> BenchOptions:
    parser = argparse.ArgumentParser()
    bench_command.add_arguments(parser)
    return bench_command.options_from(parser.parse_args(argv))


ISSUE_4 = ("--scenario", "heterogeneous", "--servers", "6", "--workers", "2", "--work-ms", "40",
           "--slow-fraction", "0.34", "--slow-factor", "4", "--load-factor", "0.7")  # fmt: skip


class TestOptions:
    def test_defaults_are_the_seed_experiment_plus_the_baseline(self) -> None:
        options = parse()
        assert options.servers == (10, 15) and options.clients == 100
        assert (options.work_ms, options.workers, options.repeat) == (500.0, 4, 3)
        assert options.policies[:3] == ("pick_first", "round_robin", "least_load")
        assert "grpc_round_robin" in options.policies

    @pytest.mark.parametrize("scenario", ["seed", "heterogeneous"])
    def test_the_stock_xds_client_runs_beside_the_lookaside_client_and_grpc(
        self, scenario: str
    ) -> None:
        policies = parse("--scenario", scenario).policies
        assert {"round_robin", "least_load", "grpc_round_robin", "xds"} <= set(policies)

    def test_quick_is_small_and_explicit_flags_win(self) -> None:
        options = parse("--quick", "--clients", "30")
        assert options.servers == (3,) and options.clients == 30
        assert (options.work_ms, options.repeat) == (50.0, 1)

    def test_issue_4_configuration_is_expressible(self) -> None:
        options = parse(*ISSUE_4, "--policies", "round_robin,grpc_round_robin")
        (rr, _) = plan(options)
        specs = backend_specs(rr, options)
        assert [s.work_ms for s in specs] == [40, 40, 40, 40, 160, 160]
        assert {s.workers for s in specs} == {2}
        # 4 x 2 / 0.04 s + 2 x 2 / 0.16 s = 225 req/s; 70 % of it is offered.
        assert rr.params["capacity_rps"] == pytest.approx(225.0)
        assert rr.params["rate_rps"] == pytest.approx(157.5)
        assert rr.params["slow_backends"] == "backend5,backend6"
        assert expected_requests(rr) == round(157.5 * options.duration_s)

    def test_lb_args_reach_every_lb_and_the_results(self) -> None:
        from lookaside.bench.runner import _lb_args

        options = parse(*ISSUE_4, "--lb-arg=--wrr-blackout=1", "--ttl", "3")
        assert _lb_args(options) == ["--ttl", "3", "--wrr-blackout=1"]
        (case, *_) = plan(options)
        assert case.params["lb_args"] == "--wrr-blackout=1"

    def test_seed_options_leave_open_loop_parameters_out(self) -> None:
        assert "load_factor" not in parse().to_dict()
        assert parse(*ISSUE_4).to_dict()["load_factor"] == 0.7

    @pytest.mark.parametrize(
        "argv",
        [("--policies", "nonsense"), ("--clients", "0"), ("--slow-fraction", "2"),
         ("--scenario", "chaos", "--policies", "grpc_round_robin"),
         ("--scenario", "chaos", "--policies", "xds")],
    )  # fmt: skip
    def test_bad_options_are_refused(self, argv: tuple[str, ...]) -> None:
        with pytest.raises(ValueError):
            parse(*argv)


def test_the_xds_case_runs_an_lb_whose_xds_weights_follow_load() -> None:
    from lookaside.bench.results import XDS_LB_POLICY
    from lookaside.lb.xds.weights import LOAD_AWARE

    assert XDS_LB_POLICY in LOAD_AWARE


def test_plan_is_every_server_count_by_policy() -> None:
    configs = plan(parse("--servers", "2,3", "--policies", "round_robin,least_load"))
    assert [(c.servers, c.policy) for c in configs] == [
        (2, "round_robin"), (2, "least_load"), (3, "round_robin"), (3, "least_load"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("servers", "fraction", "slow"), [(6, 1 / 3, 2), (6, 0.34, 2), (10, 1 / 3, 3), (3, 0.9, 2)]
)
def test_slow_count(servers: int, fraction: float, slow: int) -> None:
    assert slow_count(servers, fraction) == slow


def test_capacity_ignores_backends_without_work() -> None:
    specs = [BackendSpec("a", workers=4, work_ms=500), BackendSpec("b", workers=2, work_ms=0)]
    assert capacity_rps(specs) == pytest.approx(8.0)


def test_poisson_arrivals_are_seeded_and_near_the_rate() -> None:
    first = poisson_arrivals(200.0, 50.0, random.Random(7))
    assert first == poisson_arrivals(200.0, 50.0, random.Random(7))
    assert len(first) == pytest.approx(10_000, rel=0.05)
    gaps = [b - a for a, b in itertools.pairwise(first)]
    assert statistics.fmean(gaps) == pytest.approx(1 / 200, rel=0.05)
    assert all(0 < t < 50.0 for t in first)


def test_static_target_lists_every_backend() -> None:
    backends = [pb.BackendInfo(id="a", address="127.0.0.1", port=p) for p in (5001, 5002)]
    assert static_target(backends) == "ipv4:127.0.0.1:5001,127.0.0.1:5002"


def test_backend_spec_arguments() -> None:
    spec = BackendSpec("backend1", workers=2, work_ms=40, port=6000, report_interval=0.5)
    args = spec.args("127.0.0.1:50051")
    assert args[:3] == ["backend", "--lb", "127.0.0.1:50051"]
    for flag, value in (("--id", "backend1"), ("--port", "6000"), ("--workers", "2"),
                        ("--work-ms", "40"), ("--report-interval", "0.5")):  # fmt: skip
        assert args[args.index(flag) + 1] == value
