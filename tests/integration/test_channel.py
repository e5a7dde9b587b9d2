"""lookaside.channel and lookaside.sync_channel with real processes: an LB, stock Echo servers."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

import lookaside
from lookaside.procs import ServerProcess
from tests.integration.echo_fleet import SERVICE, EchoFleet
from tests.integration.harness import wait_until
from tests.userservice import echo_pb2 as pb
from tests.userservice import echo_pb2_grpc as pb_grpc

ECHO = "userservice.v1.Echo"
SAY_IS_IDEMPOTENT = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": ECHO, "method": "Say"}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        "lb",
        ["lb", "--port", "0", "--policy", "round_robin", "--watch-min-gap", "0.05"],
        tmp_path,
    ).start()
    process.wait_listening()
    try:
        yield process
    finally:
        process.stop()


def target(lb: ServerProcess) -> str:
    return f"127.0.0.1:{lb.port}"


async def _requests(*texts: str) -> AsyncIterator[pb.EchoRequest]:
    for text in texts:
        yield pb.EchoRequest(text=text)


async def test_all_four_call_types_metadata_and_statuses(lb: ServerProcess, tmp_path: Path) -> None:
    fleet = EchoFleet(target(lb), tmp_path)
    try:
        await fleet.start("s1", "s2")
        async with lookaside.channel(target(lb), SERVICE) as channel:
            assert isinstance(channel, grpc.aio.Channel)
            stub = pb_grpc.EchoStub(channel)
            first = await stub.Say(
                pb.EchoRequest(text="hi"), timeout=5
            )  # before any set: GetBackend
            assert first.text == "hi" and first.served_by in {"s1", "s2"}
            await channel.wait_for_backends(2)
            served = Counter(
                [(await stub.Say(pb.EchoRequest(text="x"))).served_by for _ in range(10)]
            )
            assert served == {"s1": 5, "s2": 5}

            counted = [r.text async for r in stub.Count(pb.EchoRequest(text="c", count=3))]
            assert counted == ["c-0", "c-1", "c-2"]
            gathered = await stub.Gather(_requests("a", "b", "c"))
            assert gathered.text == "a+b+c"
            gathered_sync_iter = await stub.Gather(iter([pb.EchoRequest(text="z")]))
            assert gathered_sync_iter.text == "z"
            chatted = [r.text async for r in stub.Chat(_requests("p", "q"))]
            assert chatted == ["p", "q"]
            chat = stub.Chat()
            await chat.write(pb.EchoRequest(text="w1"))
            assert (await chat.read()).text == "w1"
            await chat.done_writing()
            assert await chat.read() is grpc.aio.EOF

            zipped = stub.Say(pb.EchoRequest(text="g"), compression=grpc.Compression.Gzip)
            assert (await zipped).text == "g"
            call = stub.Say(pb.EchoRequest(text="m"), metadata=(("x-user", "u1"),), timeout=5)
            assert (await call).text == "m"
            assert await call.code() == grpc.StatusCode.OK

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Say(pb.EchoRequest(text="nope", fail_code=5))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            assert caught.value.details() == "asked to fail: nope"

            with pytest.raises(grpc.aio.AioRpcError) as late:
                await stub.Say(pb.EchoRequest(text="slow", delay_ms=2000), timeout=0.2)
            assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

            ready = await stub.Say(pb.EchoRequest(text="r"), wait_for_ready=True, timeout=5)
            assert ready.text == "r"
    finally:
        await fleet.close()


def test_sync_channel_all_four_call_types(lb: ServerProcess, tmp_path: Path) -> None:
    fleet_loop = asyncio.new_event_loop()
    fleet = EchoFleet(target(lb), tmp_path)
    fleet_thread = threading.Thread(target=fleet_loop.run_forever, daemon=True)
    fleet_thread.start()

    def on_fleet(coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, fleet_loop).result(60)

    try:
        on_fleet(fleet.start("s1", "s2"))
        with lookaside.sync_channel(target(lb), SERVICE) as channel:
            assert isinstance(channel, grpc.Channel)
            grpc.channel_ready_future(channel).result(timeout=10)
            stub = pb_grpc.EchoStub(channel)
            assert stub.Say(pb.EchoRequest(text="hi"), timeout=5).text == "hi"
            channel.wait_for_backends(2)
            served = Counter(stub.Say(pb.EchoRequest(text="x")).served_by for _ in range(10))
            assert served == {"s1": 5, "s2": 5}
            reply, call = stub.Say.with_call(pb.EchoRequest(text="w"), timeout=5)
            assert reply.text == "w" and call.code() == grpc.StatusCode.OK
            assert stub.Say.future(pb.EchoRequest(text="f")).result(5).text == "f"
            counted = [r.text for r in stub.Count(pb.EchoRequest(text="c", count=3))]
            assert counted == ["c-0", "c-1", "c-2"]
            requests = iter([pb.EchoRequest(text=t) for t in "abc"])
            assert stub.Gather(requests).text == "a+b+c"
            chatted = [r.text for r in stub.Chat(iter([pb.EchoRequest(text=t) for t in "pq"]))]
            assert chatted == ["p", "q"]
            with pytest.raises(grpc.RpcError) as caught:
                stub.Say(pb.EchoRequest(text="nope", fail_code=7))
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
            assert caught.value.details() == "asked to fail: nope"  # type: ignore[attr-defined]
    finally:
        on_fleet(fleet.close())
        fleet_loop.call_soon_threadsafe(fleet_loop.stop)
        fleet_thread.join(10)


async def _unary_load_with_a_kill(
    lb: ServerProcess, tmp_path: Path, service_config: str | None
) -> tuple[int, int, list[str], int]:
    """8 workers send 60 ms Says; s2 is SIGKILLed mid-run. (ok, failed, errors, concurrency)."""
    concurrency = 8
    fleet = EchoFleet(target(lb), tmp_path)
    ok = failed = 0
    errors: list[str] = []
    stop = asyncio.Event()
    try:
        await fleet.start("s1", "s2", "s3")
        async with lookaside.channel(target(lb), SERVICE, service_config=service_config) as channel:
            await channel.wait_for_backends(3)
            stub = pb_grpc.EchoStub(channel)

            async def worker() -> None:
                nonlocal ok, failed
                while not stop.is_set():
                    try:
                        await stub.Say(pb.EchoRequest(text="w", delay_ms=60), timeout=10)
                        ok += 1
                    except grpc.aio.AioRpcError as error:
                        failed += 1
                        errors.append(f"{error.code().name}: {error.details()}")

            workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
            await _until(lambda: ok >= 40, 20)
            await fleet.kill("s2")
            before = ok
            await _until(lambda: ok >= before + 80, 30)
            stop.set()
            await asyncio.gather(*workers)
            # s2 left the set: its channel is closed and dropped from the pool.
            await _until(lambda: len(channel.router.pool) == 2, 10)
            assert {b.id for b in channel.backends()} == {"s1", "s3"}
    finally:
        await fleet.close()
    return ok, failed, errors, concurrency


async def _until(condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_sigkill_with_a_retry_policy_loses_no_call(lb: ServerProcess, tmp_path: Path) -> None:
    ok, failed, errors, _ = await _unary_load_with_a_kill(lb, tmp_path, SAY_IS_IDEMPOTENT)
    assert failed == 0, errors[:5]
    assert ok >= 120


async def test_sigkill_without_one_fails_only_the_calls_in_flight_there(
    lb: ServerProcess, tmp_path: Path
) -> None:
    ok, failed, errors, concurrency = await _unary_load_with_a_kill(lb, tmp_path, None)
    # Round robin over 3 backends: about a third of the 8 calls in flight were on s2.
    # Every later call that met the dead backend never reached it and went elsewhere.
    assert failed <= concurrency, errors
    assert all(e.startswith("UNAVAILABLE") for e in errors), errors
    assert ok >= 120


async def test_lb_down_keeps_serving_from_the_last_set_and_says_so_once(
    lb: ServerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = EchoFleet(target(lb), tmp_path)
    try:
        await fleet.start("s1", "s2")
        async with lookaside.channel(target(lb), SERVICE) as channel:
            await channel.wait_for_backends(2)
            stub = pb_grpc.EchoStub(channel)
            caplog.set_level(logging.INFO, logger="lookaside.client")
            lb.kill()
            served = Counter()
            for _ in range(60):
                served[(await stub.Say(pb.EchoRequest(text="x"), timeout=5)).served_by] += 1
                await asyncio.sleep(0.01)
            assert served.keys() == {"s1", "s2"}
            lost = [r for r in caplog.records if "LB unreachable" in r.getMessage()]
            assert len(lost) == 1, [r.getMessage() for r in caplog.records]
    finally:
        await fleet.close()


@pytest.mark.parametrize("fast_path", [True, False], ids=["watch", "get_backend"])
async def test_lb_replicas_the_channel_moves_to_another(tmp_path: Path, fast_path: bool) -> None:
    """Two LB replicas, each told of its own two backends; the replica in use dies.

    Every call still succeeds, and the channel's picks (the watch, or GetBackend)
    come from the surviving replica, whose backends then serve.
    """
    replicas = [
        ServerProcess(f"lb{i}", ["lb", "--port", "0", "--watch-min-gap", "0.05"], tmp_path)
        for i in (0, 1)
    ]
    fleets: list[EchoFleet] = []
    try:
        for replica in replicas:
            replica.start().wait_listening()
        fleets = [EchoFleet(target(r), tmp_path) for r in replicas]
        for index, fleet in enumerate(fleets):
            await fleet.start(f"s1-{index}", f"s2-{index}")
        both = ",".join(target(r) for r in replicas)
        async with lookaside.channel(both, SERVICE, fast_path=fast_path) as channel:
            stub = pb_grpc.EchoStub(channel)
            if fast_path:
                await channel.wait_for_backends(2)
            first = await stub.Say(pb.EchoRequest(text="x"), timeout=5)
            in_use = int(first.served_by[-1])
            survivor = 1 - in_use
            replicas[in_use].kill()
            served: Counter[str] = Counter()
            for _ in range(40):
                reply = await stub.Say(pb.EchoRequest(text="y"), timeout=5)
                assert reply.text == "y"
                served[reply.served_by] += 1
                await asyncio.sleep(0.05)
            await _until(lambda: all(b.id.endswith(f"-{survivor}") for b in channel.backends()), 10)
            late = Counter(
                [(await stub.Say(pb.EchoRequest(text="z"), timeout=5)).served_by for _ in range(10)]
            )
            assert set(late) == {f"s1-{survivor}", f"s2-{survivor}"}, (served, late)
    finally:
        for fleet in fleets:
            await fleet.close()
        for replica in replicas:
            replica.stop()


def test_sync_channel_sigkill_with_a_retry_policy_loses_no_call(
    lb: ServerProcess, tmp_path: Path
) -> None:
    """Blocking threads: a first attempt that dies with its backend is retried elsewhere."""
    fleet_loop = asyncio.new_event_loop()
    fleet_thread = threading.Thread(target=fleet_loop.run_forever, daemon=True)
    fleet_thread.start()
    fleet = EchoFleet(target(lb), tmp_path)

    def on_fleet(coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, fleet_loop).result(60)

    ok = [0]
    errors: list[str] = []
    stop = threading.Event()
    try:
        on_fleet(fleet.start("s1", "s2", "s3"))
        with lookaside.sync_channel(
            target(lb), SERVICE, service_config=SAY_IS_IDEMPOTENT
        ) as channel:
            channel.wait_for_backends(3)
            stub = pb_grpc.EchoStub(channel)

            def worker() -> None:
                while not stop.is_set():
                    try:
                        stub.Say(pb.EchoRequest(text="w", delay_ms=60), timeout=10)
                        ok[0] += 1
                    except grpc.RpcError as error:
                        errors.append(f"{error.code().name}: {error.details()}")  # type: ignore[attr-defined]

            threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
            for thread in threads:
                thread.start()
            wait_until(lambda: ok[0] >= 40, 20, "load before the kill")
            on_fleet(fleet.kill("s2"))
            before = ok[0]
            wait_until(lambda: ok[0] >= before + 80, 30, "load after the kill")
            stop.set()
            for thread in threads:
                thread.join(15)
        assert errors == []
    finally:
        stop.set()
        on_fleet(fleet.close())
        fleet_loop.call_soon_threadsafe(fleet_loop.stop)
        fleet_thread.join(10)
