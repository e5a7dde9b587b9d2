"""The LB side: the server backends register with and clients ask for picks.

Servicer (validate, call the core, map errors to gRPC status), registry of
backends with leases, balancer (one policy per service), outlier ejection,
ownership of backend ids, and the hub that streams live sets to watchers.
The registry, balancer and policies have no gRPC imports.
"""
