"""Property-based tests: random and malformed messages at every RPC of a real server.

A real :class:`LbServer` and :class:`BackendServer` run in this process on one
event loop of their own; hypothesis throws sequences of messages at them
(empty, huge, NaN/inf, negative, unicode, duplicate ids, wrong services,
reports for unknown ids, streams that send garbage then vanish, bytes that are
not protobuf at all). After every call the status must be one the RPC may
answer (never UNKNOWN or INTERNAL); ``INVALID_ARGUMENT`` must name the field the
validator names; after every example the registry's invariants hold, the
wire agrees with it, and the server still serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lookaside import convert, validation
from lookaside.backend.server import BackendConfig, BackendServer
from lookaside.errors import InvalidArgument
from lookaside.lb.server import LbConfig, LbServer
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

T = TypeVar("T")
Code = grpc.StatusCode
MAX_MESSAGE_BYTES = 4096
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- the servers -----------------------------------------------------------------------


@dataclass
class Servers:
    loop: asyncio.AbstractEventLoop
    lb: LbServer
    backend: BackendServer
    lb_channel: grpc.aio.Channel
    compute_channel: grpc.aio.Channel

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    @property
    def stub(self) -> pb_grpc.LoadBalancerStub:
        return pb_grpc.LoadBalancerStub(self.lb_channel)


async def start_servers() -> Servers:
    # gRPC's aio objects bind to the loop they are made on: make them all in here.
    config = LbConfig(
        port=0, ttl=60, max_backends=8, max_streams=4, max_message_bytes=MAX_MESSAGE_BYTES
    )
    lb = LbServer(config)
    lb_port = await lb.start()
    # The backend reports to no LB: the fuzzed LB's registry changes only by the scripts.
    backend = BackendServer(
        BackendConfig(lb="127.0.0.1:1", id="fuzz-backend", port=0, drain_seconds=0)
    )
    backend_port = await backend.start()
    return Servers(
        asyncio.get_running_loop(),
        lb,
        backend,
        grpc.aio.insecure_channel(f"127.0.0.1:{lb_port}"),
        grpc.aio.insecure_channel(f"127.0.0.1:{backend_port}"),
    )


async def stop_servers(servers: Servers) -> None:
    await servers.lb_channel.close()
    await servers.compute_channel.close()
    await servers.backend.stop()
    await servers.lb.stop(0)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    loop = asyncio.new_event_loop()
    running = loop.run_until_complete(start_servers())
    try:
        yield running
    finally:
        loop.run_until_complete(stop_servers(running))
        loop.close()


# --- strategies ------------------------------------------------------------------------

# Each field: plausible values (so calls get past validation and change state), values
# on and past the edges, and anything at all.
texts = st.text(max_size=40)
ids = st.one_of(
    st.sampled_from(["b1", "b2", "b3", "dup-1", "ok.id:1@x/y+z=w"]),
    st.sampled_from(["", "x" * 129, "a b", "ünï", "-lead", "b1\n"]),
    texts,
)
addresses = st.one_of(
    st.sampled_from(["127.0.0.1", "::1", "localhost", "10.0.0.7", "backend-1.example"]),
    st.sampled_from(["", "no such host!", "a" * 300, "1.2.3.4.5", "[::1]", "-x.example"]),
    texts,
)
ports = st.one_of(
    st.integers(1, 65535),
    st.sampled_from([0, 65536, -1]),
    st.integers(-(2**31), 2**31 - 1),
)
numbers = st.one_of(
    st.floats(0, 10),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, -1.0, 1e9, 1e9 + 1, 1e308]),
    st.floats(allow_nan=True, allow_infinity=True),
)
services = st.one_of(
    st.sampled_from(["", "compute", "other"]),
    st.sampled_from(["s" * 254, "ünï", "a/b c", "-x", "svc\x00"]),
    texts,
)
huge = st.just("h" * (MAX_MESSAGE_BYTES + 100))

backend_infos = st.builds(
    pb.BackendInfo,
    id=ids,
    address=addresses,
    port=ports,
    load=numbers,
    service_name=services,
    capacity=st.one_of(st.integers(0, 64), st.integers(-(2**31), 2**31 - 1)),
    weight=numbers,
)
load_reports = st.builds(
    pb.LoadReport,
    id=ids,
    load=numbers,
    cpu_utilization=numbers,
    eps=numbers,
    named_metrics=st.dictionaries(texts, numbers, max_size=3),
)
requests = st.one_of(
    st.tuples(st.just("RegisterBackend"), backend_infos),
    st.tuples(st.just("ReportLoad"), load_reports),
    st.tuples(st.just("Deregister"), st.builds(pb.DeregisterRequest, id=ids)),
    st.tuples(
        st.just("GetBackend"),
        st.builds(
            pb.ServerRequest,
            client_id=st.one_of(texts, huge),
            service_name=services,
            hash_key=texts,
            exclude_ids=st.lists(ids, max_size=70),
        ),
    ),
    st.tuples(st.just("ListBackends"), st.builds(pb.ListBackendsRequest, service_name=services)),
    st.tuples(
        st.just("ReportClientStats"),
        st.builds(
            pb.ClientStats,
            client_id=texts,
            service_name=services,
            per_backend=st.lists(
                st.builds(
                    pb.BackendCallStats,
                    backend_id=ids,
                    calls_finished=st.integers(-5, 2**40),
                    calls_failed=st.integers(-5, 2**40),
                ),
                max_size=3,
            ),
        ),
    ),
    st.tuples(st.just("StreamLoad"), st.tuples(st.lists(load_reports, max_size=4), st.booleans())),
)

# Registrations that pass validation, so that every script starts from some state.
good_registrations = st.tuples(
    st.just("RegisterBackend"),
    st.builds(
        pb.BackendInfo,
        id=st.sampled_from(["b1", "b2", "b3", "dup-1"]),
        address=st.sampled_from(["127.0.0.1", "::1", "localhost"]),
        port=st.sampled_from([9001, 9002]),
        service_name=st.sampled_from(["", "compute", "other"]),
        capacity=st.integers(0, 8),
    ),
)

ALLOWED = {
    "RegisterBackend": {Code.OK, Code.INVALID_ARGUMENT, Code.ALREADY_EXISTS},
    "ReportLoad": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND},
    "Deregister": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND},
    "GetBackend": {Code.OK, Code.INVALID_ARGUMENT, Code.UNAVAILABLE},
    "ListBackends": {Code.OK, Code.INVALID_ARGUMENT},
    "ReportClientStats": {Code.OK, Code.INVALID_ARGUMENT},
    "StreamLoad": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.CANCELLED},
    "ComputeTask": {Code.OK, Code.INVALID_ARGUMENT},
}
ALWAYS_ALLOWED = {Code.RESOURCE_EXHAUSTED}  # message size, max backends, max streams
#: What grpcio's client reports, now and then under load, for a stream whose server ended
#: it (refusing a report) while the client was still writing.
CORE_WRITE_RACE = "Internal error from Core"

# --- calling ---------------------------------------------------------------------------


def expected_field(method: str, request: Any) -> str | None:
    """The field the validator refuses in ``request``, or None if it accepts it."""
    check = {
        "RegisterBackend": convert.registration_from_pb,
        "ReportLoad": convert.report_from_pb,
        "GetBackend": convert.pick_request_from_pb,
        "Deregister": lambda r: validation.backend_id(r.id),
        "ListBackends": lambda r: validation.service_name(r.service_name),
    }.get(method)
    if check is None:
        return None
    try:
        check(request)
    except InvalidArgument as error:
        return error.field
    return None


async def call_unary(stub: pb_grpc.LoadBalancerStub, method: str, request: Any) -> tuple[Code, str]:
    try:
        await getattr(stub, method)(request, timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return Code.OK, ""


async def call_stream(
    stub: pb_grpc.LoadBalancerStub, reports: list[pb.LoadReport], vanish: bool
) -> tuple[Code, str]:
    """Send ``reports`` on one StreamLoad, then close it or just go away."""
    call = stub.StreamLoad(timeout=5)
    for report in reports:
        try:
            await call.write(report)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            break  # the server ended the call already
    if vanish:
        call.cancel()
    else:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await call.done_writing()
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
        await call
    code, details = await call.code(), await call.details() or ""
    if code is Code.INTERNAL and details == CORE_WRITE_RACE:
        # grpcio's client side, not the LB: a write raced the server's early end of the
        # call (it refused an earlier report). The registry invariants are still checked.
        return Code.INVALID_ARGUMENT, details
    return code, details


async def check_invariants(servers: Servers) -> None:
    registry = servers.lb.registry
    seen: set[str] = set()
    for service in registry.services():
        endpoints = registry.endpoints(service)
        assert endpoints, f"empty service {service!r} kept"
        for endpoint in endpoints:
            convert.registration_from_pb(convert.endpoint_to_pb(endpoint))  # still valid
            assert endpoint.id not in seen, f"duplicate id {endpoint.id!r}"
            seen.add(endpoint.id)
            assert registry.get(endpoint.id) == endpoint
        assert len(endpoints) <= servers.lb.config.max_backends
        listed = await servers.stub.ListBackends(
            pb.ListBackendsRequest(service_name=service), timeout=5
        )
        assert [b.id for b in listed.backends] == [e.id for e in endpoints]
    assert len(registry) == len(seen)
    health = health_pb2_grpc.HealthStub(servers.lb_channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def play(servers: Servers, script: list[tuple[str, Any]]) -> None:
    stub = servers.stub
    for method, request in script:
        if method == "StreamLoad":
            code, details = await call_stream(stub, *request)
        else:
            code, details = await call_unary(stub, method, request)
        assert code in ALLOWED[method] | ALWAYS_ALLOWED, (method, request, code, details)
        event(f"{method} -> {code.name}")
        if method == "StreamLoad":
            continue
        too_big = request.ByteSize() > MAX_MESSAGE_BYTES
        field = None if too_big else expected_field(method, request)
        if field is not None:
            assert code == Code.INVALID_ARGUMENT, (method, request, code, details)
            assert details.startswith(f"{field}: "), (field, details)
        elif code == Code.INVALID_ARGUMENT:
            assert ": " in details, details  # still names what is wrong
    await check_invariants(servers)


# --- the properties --------------------------------------------------------------------


@FUZZ
@given(
    setup=st.lists(good_registrations, max_size=3),
    script=st.lists(requests, min_size=1, max_size=8),
)
def test_random_requests_keep_the_registry_sound(
    servers: Servers, setup: list[Any], script: list[Any]
) -> None:
    servers.run(play(servers, setup + script))


@FUZZ
@given(
    same_id=st.sampled_from(["dup-1", "dup-2"]),
    places=st.lists(st.tuples(addresses, ports, services), min_size=2, max_size=4),
)
def test_duplicate_ids_never_make_two_backends(
    servers: Servers, same_id: str, places: list[tuple[str, int, str]]
) -> None:
    script = [
        ("RegisterBackend", pb.BackendInfo(id=same_id, address=a, port=p, service_name=s))
        for a, p, s in places
    ]
    servers.run(play(servers, script))
    holders = [e for s in servers.lb.registry.services() for e in servers.lb.registry.endpoints(s)]
    assert sum(e.id == same_id for e in holders) <= 1


LB_METHODS = [
    "RegisterBackend",
    "ReportLoad",
    "StreamLoad",
    "Deregister",
    "GetBackend",
    "ListBackends",
    "ReportClientStats",
]


async def send_raw(servers: Servers, method: str, payload: bytes) -> Code:
    """Send bytes as they are (identity serializers), unary or as a one-message stream."""
    if method == "ComputeTask":
        channel, path = servers.compute_channel, f"/lookaside.v1.Compute/{method}"
    else:
        channel, path = servers.lb_channel, f"/lookaside.v1.LoadBalancer/{method}"
    try:
        if path.endswith("/StreamLoad"):

            async def one() -> Any:
                yield payload

            await channel.stream_unary(path)(one(), timeout=5)
        else:
            await channel.unary_unary(path)(payload, timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return Code.OK


NOT_PROTOBUF = [b"\xff\xff\xff\xff", b"\x0a\xff", b"\x08", b"\x12\x05ab", b"\x0a\x02\xc3\x28"]


@pytest.mark.parametrize("method", [*LB_METHODS, "ComputeTask"])
def test_bytes_that_are_not_protobuf(servers: Servers, method: str) -> None:
    for payload in NOT_PROTOBUF:
        code = servers.run(send_raw(servers, method, payload))
        assert code == Code.INVALID_ARGUMENT, (method, payload, code)
    servers.run(check_invariants(servers))


@FUZZ
@given(method=st.sampled_from([*LB_METHODS, "ComputeTask"]), payload=st.binary(max_size=64))
def test_random_bytes_at_every_rpc(servers: Servers, method: str, payload: bytes) -> None:
    code = servers.run(send_raw(servers, method, payload))
    assert code in ALLOWED[method] | ALWAYS_ALLOWED, (method, payload, code)
    servers.run(check_invariants(servers))


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.sampled_from(["", "\x00", "é\u0301", "🙂" * 50])))
def test_compute_reverses_any_text(servers: Servers, text: str) -> None:
    async def compute() -> pb.TaskResponse:
        stub = pb_grpc.ComputeStub(servers.compute_channel)
        return await stub.ComputeTask(pb.TaskRequest(input=text), timeout=5)

    reply = servers.run(compute())
    assert reply.result == text[::-1]
    assert reply.backend_id == "fuzz-backend"
