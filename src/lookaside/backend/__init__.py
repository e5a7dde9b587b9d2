"""The backend side: what runs next to a server and keeps it known to the LB.

``BackendAgent`` (``agent``) attaches to any Python gRPC server: registration
and lease keeping (``reporter``), load measured per call (``interceptor``,
``call_stats``), health followed (``health``) and ORCA (``orca``). The
``lookaside agent`` sidecar (``sidecar``) does the same for a server it does
not run. The demo ``Compute`` service (``compute``, ``load_source``,
``server``) is built on the agent; ``admin`` serves its ``/metrics``.
"""
