"""A stock Node client (@grpc/grpc-js + @grpc/grpc-js-xds) balanced by the LB's xDS service.

Needs node and ``npm ci`` in tests/node (``.ci/run`` does it); under CI=true a
missing piece fails the test instead of skipping it.
"""

from __future__ import annotations

from tests.integration.harness import Cluster
from tests.integration.xds_lab import (
    assert_both_fast_backends_served,
    settled_shares,
    start_fast_and_slow,
    stock_client,
)


def test_node_spreads_takes_in_a_joiner_and_follows_load_aware_weights(cluster: Cluster) -> None:
    start_fast_and_slow(cluster)
    client = stock_client(cluster, "node", concurrency=12)
    try:
        client.wait_for(
            lambda: set(client.served_since(0)) == {"fast1", "fast2", "slow"}, 30, "calls on all 3"
        )
        settled = settled_shares(client)
        print(f"node shares after settling: {settled}")
        assert_both_fast_backends_served(settled)

        cluster.start_backend("fast3", "--workers", "8", work_ms=40)
        cluster.wait_registered({"fast1", "fast2", "slow", "fast3"})
        joined = client.now()
        client.wait_for(lambda: client.served_since(joined)["fast3"] > 0, 10, "the joiner")
        first = min(w.t for w in client.windows if w.t > joined and w.served.get("fast3"))
        assert first - joined <= 3.5
        assert client.failed_since(0) == 0, client.windows[-1].errors
    finally:
        client.stop()
