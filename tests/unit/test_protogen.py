"""The generated code matches the .proto (fails when someone forgot `make proto`)."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2

from lookaside._protogen import generate
from lookaside.v1 import load_balancer_pb2


def _without_json_names(file: descriptor_pb2.FileDescriptorProto) -> None:
    """protoc fills json_name in descriptor sets but not in generated modules."""
    pending = list(file.message_type)
    while pending:
        message = pending.pop()
        pending.extend(message.nested_type)
        for field in message.field:
            field.ClearField("json_name")


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    descriptor_set = tmp_path / "set.pb"
    generate(tmp_path, descriptor_set)
    fresh = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file[0]
    shipped = descriptor_pb2.FileDescriptorProto.FromString(
        load_balancer_pb2.DESCRIPTOR.serialized_pb
    )
    _without_json_names(fresh)
    assert fresh == shipped, "src/lookaside/v1 is stale: run `make proto`"
    # The service stubs are generated from the same file.
    stubs = (tmp_path / "lookaside" / "v1" / "load_balancer_pb2_grpc.py").read_text()
    shipped_stubs = Path(load_balancer_pb2.__file__).with_name("load_balancer_pb2_grpc.py")
    assert stubs == shipped_stubs.read_text()
