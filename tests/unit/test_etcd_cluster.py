"""The tests' etcd starts whole: a member that cannot bind its port restarts the cluster."""

from __future__ import annotations

import socket
from pathlib import Path

from lookaside.bench.etcd_cluster import EtcdCluster


def test_a_member_whose_port_was_taken_does_not_leave_the_cluster_short(
    etcd_installed: str, tmp_path: Path
) -> None:
    cluster = EtcdCluster(tmp_path / "etcd", 3)
    taken = cluster.members[1].client_port
    with socket.socket() as squatter:  # what another process on the machine may do
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        cluster.start()
        try:
            assert all(m.alive() and m.healthy() for m in cluster.members)
            assert taken not in [m.client_port for m in cluster.members]
        finally:
            cluster.stop()
