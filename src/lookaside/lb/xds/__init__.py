"""lookaside as an xDS control plane: stock gRPC clients dial ``xds:///SERVICE``.

* :mod:`~lookaside.lb.xds.config` — every xDS default, in one dataclass;
* :mod:`~lookaside.lb.xds.weights` — load, capacity, static weight and policy
  turned into integer locality weights, with damping;
* :mod:`~lookaside.lb.xds.resources` — Listener, RouteConfiguration, Cluster
  and ClusterLoadAssignment built from the balancer's live view;
* :mod:`~lookaside.lb.xds.publisher` — keeps the current resources and their
  versions, and decides when a change is pushed;
* :mod:`~lookaside.lb.xds.ads` — the Aggregated Discovery Service (state of
  the world, versions, nonces, ACK/NACK).

Why one locality per backend: stock gRPC clients ignore endpoint weights
under ``round_robin`` but honour locality weights through ``wrr_locality``
(gRFC A52), which a Cluster with ``lb_policy: ROUND_ROBIN`` maps to.
"""
