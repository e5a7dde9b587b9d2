"""lookaside: a gRPC look-aside load balancer."""

__version__ = "0.1.0"
