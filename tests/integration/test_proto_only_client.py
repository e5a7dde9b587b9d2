"""A client generated from the .proto alone (no lookaside import) can use the system."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from lookaside._protogen import PROTO_FILE, PROTO_ROOT
from tests.integration.harness import Cluster

CLIENT = textwrap.dedent(
    """
    import sys
    import grpc
    import load_balancer_pb2 as pb
    import load_balancer_pb2_grpc as pb_grpc

    lb = pb_grpc.LoadBalancerStub(grpc.insecure_channel(sys.argv[1]))
    backend = lb.GetBackend(pb.ServerRequest(client_id="outsider"), timeout=5)
    compute = pb_grpc.ComputeStub(grpc.insecure_channel(f"{backend.address}:{backend.port}"))
    reply = compute.ComputeTask(pb.TaskRequest(input="outsider"), timeout=5)
    print(reply.result, reply.backend_id)
    """
)


def test_client_generated_from_proto_alone(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_lb("round_robin")
    cluster.start_backend("solo")
    cluster.wait_registered({"solo"})
    gen = tmp_path / "gen"
    gen.mkdir()
    shutil.copy(PROTO_ROOT / PROTO_FILE, gen / "load_balancer.proto")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{gen}",
            f"--python_out={gen}",
            f"--grpc_python_out={gen}",
            str(gen / "load_balancer.proto"),
        ],
        check=True,
    )
    (gen / "client.py").write_text(CLIENT)
    # -P: do not put the cwd on sys.path; the script imports only the generated modules.
    out = subprocess.run(
        [sys.executable, str(gen / "client.py"), cluster.lb_target],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=gen,
        check=True,
    )
    assert out.stdout.split() == ["redistuo", "solo"]
