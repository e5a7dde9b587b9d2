"""Tokens, TLS and mutual TLS end to end: real LB, backend and client processes.

A missing or wrong token is answered ``UNAUTHENTICATED`` and changes nothing;
TLS and mutual TLS work across lb + backend + client, and plaintext or
wrong-CA callers are refused. Secrets never appear in any log or output.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS
from lookaside.client.lookaside_client import LookasideClient, LookasideError
from lookaside.procs import lookaside_command
from lookaside.security import AUTH_TOKEN_ENV, CLIENT_TOKEN_ENV, TlsConfig, Token, bearer_metadata
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.certs import Pki, make_pki
from tests.integration.harness import Cluster, wait_until

BACKEND_SECRET = f"backend-{uuid.uuid4().hex}"
CLIENT_SECRET = f"client-{uuid.uuid4().hex}"
WRONG_SECRET = f"wrong-{uuid.uuid4().hex}"
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def token_file(directory: Path, name: str, secret: str) -> Path:
    path = directory / name
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (AUTH_TOKEN_ENV, CLIENT_TOKEN_ENV)}


def run_client(
    lb_target: str, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lookaside_command(), "client", "--lb", lb_target, "--timeout", "5", *flags, "hello"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or clean_env(),
    )


async def _one_report(report: pb.LoadReport) -> AsyncIterator[pb.LoadReport]:
    yield report


async def refused_without_the_right_token(lb_target: str) -> list[str]:
    """Call every guarded RPC with no token and with the wrong one; return the details."""
    details = []
    async with grpc.aio.insecure_channel(lb_target) as channel:
        lb = pb_grpc.LoadBalancerStub(channel)
        membership = [
            lambda md: lb.RegisterBackend(
                pb.BackendInfo(id="intruder", address="127.0.0.1", port=1), metadata=md, timeout=5
            ),
            lambda md: lb.ReportLoad(pb.LoadReport(id="good", load=99.0), metadata=md, timeout=5),
            lambda md: lb.StreamLoad(
                _one_report(pb.LoadReport(id="good", load=99.0)), metadata=md, timeout=5
            ),
            lambda md: lb.Deregister(pb.DeregisterRequest(id="good"), metadata=md, timeout=5),
        ]
        selection = [
            lambda md: lb.GetBackend(pb.ServerRequest(), metadata=md, timeout=5),
            lambda md: lb.ListBackends(pb.ListBackendsRequest(), metadata=md, timeout=5),
            lambda md: lb.ReportClientStats(
                pb.ClientStats(
                    client_id="c",
                    per_backend=[
                        pb.BackendCallStats(backend_id="good", calls_finished=9, calls_failed=9)
                    ],
                ),
                metadata=md,
                timeout=5,
            ),
        ]
        # Wrong token for each group: none, a wrong one, and the *other* group's token.
        for calls, other in ((membership, CLIENT_SECRET), (selection, BACKEND_SECRET)):
            for call in calls:
                for token in (None, Token(WRONG_SECRET), Token(other)):
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await call(bearer_metadata(token))
                    assert caught.value.code() == UNAUTHENTICATED
                    details.append(caught.value.details() or "")
        reply = await lb.GetBackend(
            pb.ServerRequest(), metadata=bearer_metadata(Token(CLIENT_SECRET)), timeout=5
        )
        assert reply.id in {"good", "from-env"}
    return details


def test_tokens_guard_membership_and_selection(cluster: Cluster, tmp_path: Path) -> None:
    backend_token = token_file(tmp_path, "backend.token", BACKEND_SECRET)
    client_token = token_file(tmp_path, "client.token", CLIENT_SECRET)
    wrong_token = token_file(tmp_path, "wrong.token", WRONG_SECRET)
    env = clean_env()
    cluster.start_lb(
        "round_robin",
        "--auth-token-file",
        str(backend_token),
        "--client-token-file",
        str(client_token),
        env=env,
    )
    cluster.admin_token = Token(CLIENT_SECRET)
    cluster.start_backend("good", "--auth-token-file", str(backend_token), env=env)
    cluster.start_backend("from-env", env={**env, AUTH_TOKEN_ENV: BACKEND_SECRET})
    rogue = cluster.start_backend("rogue", "--auth-token-file", str(wrong_token), env=env)
    anonymous = cluster.start_backend("anonymous", env=env)
    cluster.wait_registered({"good", "from-env"})
    for refused in (rogue, anonymous):
        wait_until(
            lambda p=refused: "code=UNAUTHENTICATED" in p.log_text(),  # type: ignore[misc]
            10,
            f"{refused.name} to be refused",
        )

    details = asyncio.run(refused_without_the_right_token(cluster.lb_target))
    assert set(details) == {"missing bearer token", "invalid bearer token"}
    backends = {b.id: b for b in cluster.list_backends()}
    assert set(backends) == {"good", "from-env"}  # nothing registered, nothing removed
    assert backends["good"].load < 99.0  # the refused reports changed nothing

    ok = run_client(cluster.lb_target, "--json", "--client-token-file", str(client_token))
    assert ok.returncode == 0, ok.stderr
    assert '"result": "olleh"' in ok.stdout
    from_env = run_client(cluster.lb_target, env={**env, CLIENT_TOKEN_ENV: CLIENT_SECRET})
    assert from_env.returncode == 0, from_env.stderr
    refused = run_client(cluster.lb_target)
    assert refused.returncode == 1
    assert "UNAUTHENTICATED" in refused.stderr

    seen = cluster.logs() + ok.stdout + ok.stderr + refused.stderr + from_env.stderr
    for secret in (BACKEND_SECRET, CLIENT_SECRET, WRONG_SECRET):
        assert secret not in seen


def tls_flags(cert: Path, key: Path, client_ca: Path | None = None) -> list[str]:
    flags = ["--tls-cert", str(cert), "--tls-key", str(key)]
    return flags if client_ca is None else [*flags, "--tls-client-ca", str(client_ca)]


async def compute_error(lb_target: str, tls: TlsConfig | None) -> grpc.StatusCode:
    async with LookasideClient(
        lb_target, config=replace(LOOKASIDE_CLIENT_DEFAULTS, tls=tls, timeout=3, max_attempts=1)
    ) as client:
        with pytest.raises(LookasideError) as caught:
            await client.compute("hello")
    return caught.value.code


async def plaintext_compute_error(target: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.ComputeStub(channel).ComputeTask(pb.TaskRequest(input="x"), timeout=3)
    return caught.value.code()


def test_tls_end_to_end_and_strangers_refused(cluster: Cluster, pki: Pki) -> None:
    serve_tls = tls_flags(pki.server_cert, pki.server_key)
    cluster.start_lb("round_robin", *serve_tls)
    cluster.admin_tls = TlsConfig(ca=pki.ca_cert)
    cluster.start_backend("t1", *serve_tls, "--tls-ca", str(pki.ca_cert))
    plaintext = cluster.start_backend("plain")  # dials the TLS LB without TLS
    [t1] = cluster.wait_registered({"t1"})

    ok = run_client(cluster.lb_target, "--json", "--tls-ca", str(pki.ca_cert))
    assert ok.returncode == 0, ok.stderr
    assert '"backend_id": "t1"' in ok.stdout

    unavailable = grpc.StatusCode.UNAVAILABLE
    assert asyncio.run(compute_error(cluster.lb_target, None)) == unavailable
    assert asyncio.run(compute_error(cluster.lb_target, TlsConfig(ca=pki.other_ca_cert))) == (
        unavailable
    )
    assert asyncio.run(plaintext_compute_error(f"127.0.0.1:{t1.port}")) == unavailable
    wait_until(lambda: "code=UNAVAILABLE" in plaintext.log_text(), 10, "plaintext backend refused")
    assert cluster.live_ids() == {"t1"}


def test_mutual_tls_with_tokens_end_to_end(cluster: Cluster, pki: Pki, tmp_path: Path) -> None:
    backend_token = token_file(tmp_path, "backend.token", BACKEND_SECRET)
    serve_mtls = tls_flags(pki.peer_cert, pki.peer_key, pki.ca_cert)
    cluster.start_lb("round_robin", *serve_mtls, "--auth-token-file", str(backend_token))
    mine = TlsConfig(ca=pki.ca_cert, cert=pki.client_cert, key=pki.client_key)
    cluster.admin_tls = mine
    # The backend serves with its peer certificate and presents it to the LB.
    dial_lb = ["--tls-ca", str(pki.ca_cert), "--auth-token-file", str(backend_token)]
    cluster.start_backend("m1", *serve_mtls, *dial_lb)
    cluster.wait_registered({"m1"})

    client_flags = ["--tls-ca", str(pki.ca_cert)]
    client_flags += ["--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
    ok = run_client(cluster.lb_target, "--json", *client_flags)
    assert ok.returncode == 0, ok.stderr
    assert '"backend_id": "m1"' in ok.stdout

    unavailable = grpc.StatusCode.UNAVAILABLE
    no_cert = TlsConfig(ca=pki.ca_cert)
    stranger = TlsConfig(ca=pki.ca_cert, cert=pki.other_client_cert, key=pki.other_client_key)
    assert asyncio.run(compute_error(cluster.lb_target, no_cert)) == unavailable
    assert asyncio.run(compute_error(cluster.lb_target, stranger)) == unavailable
    assert BACKEND_SECRET not in cluster.logs()
