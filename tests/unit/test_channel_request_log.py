"""RequestLog: a streaming call's requests, kept for a retry and replayed in order (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lookaside.client.calls import RequestLog


async def source(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


async def take(iterator: AsyncIterator[str], count: int) -> list[str]:
    return [await iterator.__anext__() for _ in range(count)]


async def test_a_retry_replays_what_the_failed_attempt_read_then_goes_on() -> None:
    log = RequestLog(source("a", "b", "c"), limit=1024)
    first = log.replay()
    assert await take(first, 2) == ["a", "b"]  # the attempt fails here
    second = log.replay()
    assert [item async for item in second] == ["a", "b", "c"]
    assert not log.overflowed


async def test_a_message_pulled_by_a_stale_reader_reaches_the_next_attempt() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()

    async def slow() -> AsyncIterator[str]:
        while (item := await queue.get()) != "end":
            yield item

    log = RequestLog(slow(), limit=1024)
    stale = log.replay()
    pending = asyncio.ensure_future(stale.__anext__())  # the failed attempt still waits
    await asyncio.sleep(0)
    fresh = log.replay()
    waiting = asyncio.ensure_future(fresh.__anext__())
    queue.put_nowait("x")
    assert await pending == "x"
    assert await waiting == "x"  # kept, so the new attempt sends it too
    queue.put_nowait("end")
    assert [item async for item in fresh] == []


async def test_past_the_limit_nothing_is_kept_and_the_call_is_committed() -> None:
    log = RequestLog(source("a", "b", "c"), limit=2)  # sizes count 1 without ByteSize
    reader = log.replay()
    assert [item async for item in reader] == ["a", "b", "c"]
    assert log.overflowed
