"""A minimal gRPC-over-HTTP/2 client (the ``h2`` package) that shows every trailer.

grpcio's clients consume ``endpoint-load-metrics-bin`` themselves (gRFC A51:
the trailer is for the client's load balancing policy) and never hand it to
the application, so a test that wants to read the ORCA trailer a server
sent speaks the gRPC wire protocol itself: one unary call, plaintext (h2c
with prior knowledge), the response message and the trailers as sent.
"""

from __future__ import annotations

import base64
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events


def unary_call(
    host: str, port: int, method: str, request: bytes, timeout: float = 5.0
) -> tuple[bytes, dict[str, bytes]]:
    """Call ``method`` (``/pkg.Service/Method``); the reply bytes and the trailers.

    ``-bin`` trailers come back decoded from base64, as gRPC defines them.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(
            stream,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", method),
                (":authority", f"{host}:{port}"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ],
        )
        conn.send_data(stream, struct.pack(">?I", False, len(request)) + request, end_stream=True)
        sock.sendall(conn.data_to_send())
        body, trailers = bytearray(), dict[str, bytes]()
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    body.extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.TrailersReceived | h2.events.ResponseReceived):
                    # A call that fails at once gets one HEADERS frame ("Trailers-Only").
                    headers = dict(event.headers)
                    if b"grpc-status" not in headers and "grpc-status" not in headers:
                        continue
                    for key, value in event.headers:
                        name = key.decode() if isinstance(key, bytes) else key
                        raw = value if isinstance(value, bytes) else value.encode()
                        trailers[name] = (
                            base64.b64decode(raw + b"=" * (-len(raw) % 4))
                            if name.endswith("-bin")
                            else raw
                        )
            sock.sendall(conn.data_to_send())
            if trailers:
                break
        if not trailers:
            raise TimeoutError(f"no trailers from {host}:{port}{method} within {timeout}s")
        reply = bytes(body[5:]) if len(body) >= 5 else b""
        return reply, trailers
