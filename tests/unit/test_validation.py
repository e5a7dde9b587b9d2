"""Every caller-controlled field is checked and the error names the field."""

from __future__ import annotations

import math

import pytest

from lookaside import convert, validation
from lookaside.errors import InvalidArgument
from lookaside.v1 import load_balancer_pb2 as pb

GOOD = {"id": "b1", "address": "127.0.0.1", "port": 9000}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"id": "bad id"}, "id"),
        ({"address": ""}, "address"),
        ({"address": "not a host!"}, "address"),
        ({"address": "-leading.example"}, "address"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": -1}, "port"),
        ({"load": -0.5}, "load"),
        ({"load": math.nan}, "load"),
        ({"load": math.inf}, "load"),
        ({"service_name": "s" * 254}, "service_name"),
        ({"service_name": "has space"}, "service_name"),
        ({"capacity": -1}, "capacity"),
        ({"weight": math.nan}, "weight"),
    ],
)
def test_bad_registration_names_the_field(changes: dict[str, object], field: str) -> None:
    info = pb.BackendInfo(**{**GOOD, **changes})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as caught:
        convert.registration_from_pb(info)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}:")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "backend-3.example.com"])
def test_good_addresses(host: str) -> None:
    assert validation.address(host) == host


def test_defaults_fill_in() -> None:
    registration = convert.registration_from_pb(pb.BackendInfo(**GOOD))  # type: ignore[arg-type]
    assert registration.service == "compute"
    assert registration.capacity == 1
    assert registration.weight == 1.0


def test_bad_load_report_fields() -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.report_from_pb(pb.LoadReport(id="b1", load=0.1, cpu_utilization=-1))
    assert caught.value.field == "cpu_utilization"
    with pytest.raises(InvalidArgument) as caught:
        convert.report_from_pb(pb.LoadReport(id="b1", named_metrics={"q": math.inf}))
    assert caught.value.field.startswith("named_metrics")


def test_too_many_exclusions() -> None:
    request = pb.ServerRequest(exclude_ids=[f"b{i}" for i in range(65)])
    with pytest.raises(InvalidArgument) as caught:
        convert.pick_request_from_pb(request)
    assert caught.value.field == "exclude_ids"
