"""A user-style gRPC service (``userservice.v1.Echo``) that lookaside has never seen.

``echo.proto`` has all four call types; ``servicer.EchoServicer`` implements
it; ``python -m tests.userservice.server`` runs it as a stock grpcio server
with ``grpc.health.v1`` and no lookaside code, the way a team's own server
would look before it is put behind lookaside. Regenerate the code with::

    .venv/bin/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. \\
        --grpc_python_out=. tests/userservice/echo.proto
"""
