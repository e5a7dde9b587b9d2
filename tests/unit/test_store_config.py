"""--store values: memory, or etcd:// with one member or several; mistakes name the flag."""

from __future__ import annotations

import argparse

import pytest

from lookaside.commands import lb as lb_command
from lookaside.lb.store import StoreConfig
from lookaside.lb.store.config import etcd_endpoints


def test_memory_is_the_default_and_shares_nothing() -> None:
    assert StoreConfig().url == "memory"
    assert not StoreConfig().shared


def test_etcd_urls_list_every_member() -> None:
    config = StoreConfig(url="etcd://127.0.0.1:2379,127.0.0.1:22379")
    assert config.shared
    assert [str(m) for m in etcd_endpoints(config.url)] == ["127.0.0.1:2379", "127.0.0.1:22379"]
    assert config.etcd_target() == "ipv4:127.0.0.1:2379,127.0.0.1:22379"
    assert StoreConfig(url="etcd://localhost:2379").etcd_target() == "localhost:2379"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://x:1", "neither 'memory' nor etcd://"),
        ("etcd://", "no address"),
        ("etcd://host", "not HOST:PORT"),
        ("etcd://h:0", "outside 1..65535"),
        ("etcd://h:1,h:1", "same address twice"),
    ],
)
def test_bad_store_urls_are_refused_naming_the_flag(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match="--store") as refused:
        StoreConfig(url=url)
    assert problem in str(refused.value)


def test_prefix_and_intervals_are_checked() -> None:
    with pytest.raises(ValueError, match="--store-prefix"):
        StoreConfig(prefix="lookaside")
    with pytest.raises(ValueError, match="--load-share-interval"):
        StoreConfig(load_share_interval=0)


def test_the_cli_reads_its_defaults_from_the_config() -> None:
    parser = argparse.ArgumentParser()
    lb_command.add_arguments(parser)
    config = lb_command.store_config_from_args(parser.parse_args([]))
    assert config == StoreConfig()
    args = parser.parse_args(["--store", "etcd://127.0.0.1:2379", "--load-share-interval", "1"])
    assert lb_command.store_config_from_args(args).load_share_interval == 1.0


def test_the_cli_refuses_a_bad_store_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="lookaside lb")
    lb_command.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--store", "etcd://nowhere"])
    assert "--store: 'nowhere' is not HOST:PORT" in capsys.readouterr().err
