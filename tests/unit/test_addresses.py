from __future__ import annotations

import pytest

from lookaside.addresses import HostPort, grpc_target, host_port, lb_addresses, port_number


def test_host_port_forms() -> None:
    assert host_port("127.0.0.1:50051") == HostPort("127.0.0.1", 50051)
    assert host_port("[::1]:7") == HostPort("::1", 7)
    assert str(host_port("[::1]:7")) == "[::1]:7"
    assert host_port("lb.example:1") == HostPort("lb.example", 1)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("127.0.0.1:99999", "99999 is outside 1..65535"),
        ("127.0.0.1:0", "0 is outside 1..65535"),
        ("127.0.0.1:-5", "-5 is outside"),
        ("127.0.0.1:http", "'http' is not a port number"),
        ("127.0.0.1", "is not HOST:PORT"),
        ("::1:80", "[ADDRESS]:PORT"),
        ("not_a_host:80", "neither an IP address nor a host name"),
    ],
)
def test_bad_host_port_names_the_flag(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=r"^--lb: ") as caught:
        host_port(text, "--lb")
    assert words in str(caught.value)


def test_listening_port_may_be_zero_but_not_out_of_range() -> None:
    assert port_number("0", "--port", allow_zero=True) == 0
    with pytest.raises(ValueError, match=r"--port: 65536 is outside 0\.\.65535"):
        port_number(65536, "--port", allow_zero=True)


def test_replica_lists() -> None:
    assert lb_addresses("a:1, b:2") == (HostPort("a", 1), HostPort("b", 2))
    assert grpc_target("127.0.0.1:1") == "127.0.0.1:1"
    assert grpc_target("127.0.0.1:1,localhost:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert grpc_target("[::1]:1,[::1]:2") == "ipv6:[::1]:1,[::1]:2"
    with pytest.raises(ValueError, match="same address twice"):
        lb_addresses("a:1,a:1")
    with pytest.raises(ValueError, match="mixes IPv4 and IPv6"):
        grpc_target("127.0.0.1:1,[::1]:2")
    with pytest.raises(ValueError, match="no address"):
        lb_addresses(" , ")
