"""Regenerate ``lookaside.v1`` from ``proto/lookaside/v1/load_balancer.proto``.

Run with ``make proto`` (``python -m lookaside._protogen``). Needs the dev
extra ``grpcio-tools``. The output lands in ``src/lookaside/v1/`` so the
generated imports (``from lookaside.v1 import load_balancer_pb2``) resolve
inside this package.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_FILE = "lookaside/v1/load_balancer.proto"


def generate(out_dir: Path, descriptor_set: Path | None = None) -> None:
    """Write the generated modules (and optionally a descriptor set) under ``out_dir``."""
    from grpc_tools import protoc

    include = str(resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
    ]
    if descriptor_set is not None:
        args.append(f"--descriptor_set_out={descriptor_set}")
    args.append(str(PROTO_ROOT / PROTO_FILE))
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO_FILE}")


def main() -> int:
    out_dir = REPO_ROOT / "src"
    generate(out_dir)
    init = out_dir / "lookaside" / "v1" / "__init__.py"
    if not init.exists():
        init.write_text('"""Generated protobuf/gRPC code (do not edit; run `make proto`)."""\n')
    print(f"generated {PROTO_FILE} -> {out_dir / 'lookaside' / 'v1'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
