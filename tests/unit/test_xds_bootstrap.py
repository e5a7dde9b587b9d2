"""``lookaside xds-bootstrap``: what stock clients need, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookaside.cli import main
from lookaside.lb.xds.bootstrap import bootstrap


def test_plaintext_bootstrap_has_servers_node_id_and_locality() -> None:
    config = bootstrap("127.0.0.1:50051", "edge-1")
    (server,) = config["xds_servers"]
    assert server["server_uri"] == "127.0.0.1:50051"
    assert server["channel_creds"] == [{"type": "insecure"}]
    assert config["node"]["id"] == "edge-1"
    assert config["node"]["locality"]  # grpc-js-xds refuses a node without one


def test_replicas_become_several_servers_in_order() -> None:
    config = bootstrap("10.0.0.1:50051,[::1]:50052")
    assert [s["server_uri"] for s in config["xds_servers"]] == ["10.0.0.1:50051", "[::1]:50052"]


def test_tls_and_mutual_tls_creds(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "me.pem", "me.key"))
    (creds,) = bootstrap("lb:443", ca=ca)["xds_servers"][0]["channel_creds"]
    assert creds == {"type": "tls", "config": {"ca_certificate_file": str(ca.resolve())}}
    (creds,) = bootstrap("lb:443", ca=ca, cert=cert, key=key)["xds_servers"][0]["channel_creds"]
    assert creds["config"]["certificate_file"] == str(cert.resolve())
    assert creds["config"]["private_key_file"] == str(key.resolve())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lb", "127.0.0.1:99999"], "--lb: 99999 is outside 1..65535"),
        (["--lb", "nohostport"], "--lb: 'nohostport' is not HOST:PORT"),
        (["--node-id", " "], "--node-id: must not be empty"),
        (["--tls-cert", "a.pem", "--tls-key", "a.key"], "--tls-cert needs --tls-ca"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["xds-bootstrap", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_prints_json_or_writes_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["xds-bootstrap", "--lb", "127.0.0.1:7000"]) == 0
    assert json.loads(capsys.readouterr().out)["xds_servers"][0]["server_uri"] == "127.0.0.1:7000"
    target = tmp_path / "bootstrap.json"
    assert main(["xds-bootstrap", "--output", str(target)]) == 0
    assert json.loads(target.read_text())["node"]["id"] == "lookaside-xds-client"
