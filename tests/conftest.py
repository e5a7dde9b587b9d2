"""Fixtures every test folder may use: a real etcd on loopback (one member, or three).

Under ``CI=true`` a machine without etcd fails these tests; elsewhere they skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookaside.bench.etcd_cluster import EtcdCluster, etcd_binary


def _require_etcd() -> str:
    binary = etcd_binary()
    if binary is None:
        message = "etcd is not installed (Debian: apt-get install etcd-server; .ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture
def etcd_installed() -> str:
    """The etcd binary, for a test that starts its own etcd (through a command under test)."""
    return _require_etcd()


def _etcd(directory: Path, size: int) -> Iterator[EtcdCluster]:
    _require_etcd()
    cluster = EtcdCluster(directory / "etcd", size).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    """A one-member etcd with a temporary data dir, stopped after the test."""
    yield from _etcd(tmp_path, 1)


@pytest.fixture
def etcd3(tmp_path: Path) -> Iterator[EtcdCluster]:
    """A three-member etcd cluster."""
    yield from _etcd(tmp_path, 3)
