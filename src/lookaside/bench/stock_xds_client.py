"""A stock grpcio client that balances through lookaside's xDS service: no lookaside import.

Run as a plain script, with code generated from ``load_balancer.proto`` in
``--stubs`` and ``GRPC_XDS_BOOTSTRAP`` pointing at the bootstrap
``lookaside xds-bootstrap`` printed::

    GRPC_XDS_BOOTSTRAP=bootstrap.json python stock_xds_client.py --stubs DIR xds:///compute

``--concurrency`` threads call ``lookaside.v1.Compute/ComputeTask`` in a closed
loop; every ``--window`` seconds one JSON line says who served how many calls
(``TaskResponse.backend_id``) and how many failed. It stops after
``--seconds`` (0: when stdin closes), so a parent reads shares as they move.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="e.g. xds:///compute")
    parser.add_argument("--stubs", required=True, help="directory of load_balancer_pb2*.py")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=0.0, help="0 = until stdin closes")
    parser.add_argument("--window", type=float, default=0.5, help="seconds per output line")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline per call")
    args = parser.parse_args()
    sys.path.insert(0, args.stubs)
    import grpc
    import load_balancer_pb2 as pb  # type: ignore[import-not-found]
    import load_balancer_pb2_grpc as pb_grpc  # type: ignore[import-not-found]

    stub = pb_grpc.ComputeStub(grpc.insecure_channel(args.target))
    lock = threading.Lock()
    served: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                reply = stub.ComputeTask(pb.TaskRequest(input="stock"), timeout=args.timeout)
            except grpc.RpcError as error:
                with lock:
                    failures.append(f"{error.code().name}: {error.details()}")
                time.sleep(0.05)  # a failing channel is not a reason to spin
                continue
            with lock:
                served[reply.backend_id] += 1

    def watch_stdin() -> None:
        sys.stdin.read()
        stop.set()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    if args.seconds <= 0:
        threads.append(threading.Thread(target=watch_stdin, daemon=True))
    for thread in threads:
        thread.start()
    started = time.monotonic()
    while not stop.wait(args.window):
        with lock:
            window = {"t": round(time.monotonic() - started, 3), "served": dict(served)}
            window.update(failed=len(failures), errors=failures[:3])
            served.clear()
            failures.clear()
        print(json.dumps(window), flush=True)
        if args.seconds and time.monotonic() - started >= args.seconds:
            stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
