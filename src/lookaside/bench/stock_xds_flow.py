"""The lab's ``xds`` flow: a stock grpcio client, run as a plain script with no lookaside import.

It imports only the standard library, ``grpc`` and the code generated from
``load_balancer.proto`` (in ``--stubs``). ``GRPC_XDS_BOOTSTRAP`` is read once
per process, which is one reason it is a process of its own; the other is that
nothing of lookaside can leak into it. The parent
(:mod:`lookaside.bench.xds_flow`) talks to it over stdin and stdout, one JSON
object a line:

1. stdin: ``{"target": "xds:///compute", "clients": C}``. It opens C channels
   (one per simulated client, as the lab's other flows do), waits until all
   are READY (the xDS resources arrived and the backends are connected), and
   prints ``{"ready": true}``.
2. stdin: the plan, which is also the start signal:
   ``{"mode": "closed", "requests_per_client": R, "timeout": S}`` (every
   client sends R requests one after another, all at once) or
   ``{"mode": "open", "arrivals": [offsets...], "timeout": S}`` (request k
   at start + offset k on client k mod C, whatever the answers so far).
3. stdout: one line per request, ``{"backend_id", "start", "end", "total_ms",
   "error"}`` with times in seconds since the start and latency from the
   scheduled arrival (open loop) or the send (closed loop); then
   ``{"done": true, "wall": s, "lookaside_modules": [...]}`` (always empty:
   the parent checks).

It exits when stdin closes, so a parent that dies leaves no orphan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import sys
import threading
import time
from typing import Any

WRONG_RESULT = "wrong result"
READY_TIMEOUT_S = 30.0


def _payload(client: int, request: int) -> str:
    return f"lookaside-{client}-{request}"


def _stdin_lines() -> queue.Queue[str]:
    """Lines from stdin on a thread; end of input ends the process."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            lines.put(line)
        os._exit(0)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _run(lines: queue.Queue[str], pb: Any, pb_grpc: Any) -> None:
    import grpc

    hello = json.loads(await asyncio.to_thread(lines.get))
    channels = [grpc.aio.insecure_channel(hello["target"]) for _ in range(hello["clients"])]
    stubs = [pb_grpc.ComputeStub(channel) for channel in channels]
    ready = [channel.channel_ready() for channel in channels]
    await asyncio.wait_for(asyncio.gather(*ready), READY_TIMEOUT_S)
    await asyncio.sleep(0.2)  # let every channel's policy see all its subchannels READY
    _emit({"ready": True})
    plan = json.loads(await asyncio.to_thread(lines.get))
    started = time.perf_counter()
    timeout = float(plan["timeout"])

    async def call(client: int, number: int, scheduled: float | None) -> None:
        text = _payload(client, number)
        sent = time.perf_counter()
        backend_id, error = "", ""
        try:
            reply = await stubs[client % len(stubs)].ComputeTask(
                pb.TaskRequest(input=text), timeout=timeout
            )
            backend_id = reply.backend_id
            error = "" if reply.result == text[::-1] else WRONG_RESULT
        except grpc.aio.AioRpcError as exc:
            error = exc.code().name
        end = time.perf_counter()
        origin = sent if scheduled is None else scheduled
        _emit({
            "backend_id": backend_id,
            "start": sent - started,
            "end": end - started,
            "total_ms": (end - origin) * 1e3,
            "error": error,
        })  # fmt: skip

    if plan["mode"] == "closed":

        async def client_loop(client: int) -> None:
            for number in range(int(plan["requests_per_client"])):
                await call(client, number, None)

        await asyncio.gather(*(client_loop(c) for c in range(len(stubs))))
    else:
        tasks = []
        for index, offset in enumerate(plan["arrivals"]):
            at = started + float(offset)
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(call(index, 0, at)))
        await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    await asyncio.gather(*(channel.close(None) for channel in channels))
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] == "lookaside")
    _emit({"done": True, "wall": wall, "lookaside_modules": loaded})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stubs", required=True, help="directory of load_balancer_pb2*.py")
    args = parser.parse_args()
    sys.path.insert(0, args.stubs)
    import load_balancer_pb2 as pb  # type: ignore[import-not-found]
    import load_balancer_pb2_grpc as pb_grpc  # type: ignore[import-not-found]

    lines = _stdin_lines()
    asyncio.run(_run(lines, pb, pb_grpc))
    lines.get()  # stay until the parent closes stdin (the reader thread then exits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
