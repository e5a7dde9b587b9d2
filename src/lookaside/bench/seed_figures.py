"""The seed report's published figures (section 5b), as data to compare against.

Copied verbatim from ``shared/seed/000_5c5a82091c2adcb7.txt``: 100 concurrent
clients, one request each. Times are in seconds as published. Where the seed
gave the whole usage map it is here; where it only described it (15-server
round robin: "roughly evenly, e.g. ...") ``usage`` is ``None`` and ``usage_note``
quotes it. The seed ran no ``grpc_round_robin`` baseline, so it has no entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEED_CLIENTS = 100


@dataclass(frozen=True, slots=True)
class SeedFigures:
    servers: int
    policy: str
    avg_s: float
    max_s: float
    min_s: float
    throughput_rps: float
    usage: dict[str, int] | None
    usage_note: str
    clients: int = field(default=SEED_CLIENTS)

    def to_dict(self) -> dict[str, object]:
        return {
            "servers": self.servers,
            "policy": self.policy,
            "clients": self.clients,
            "avg_s": self.avg_s,
            "max_s": self.max_s,
            "min_s": self.min_s,
            "throughput_rps": self.throughput_rps,
            "usage": None if self.usage is None else dict(self.usage),
            "usage_note": self.usage_note,
        }


def _even(servers: int, each: int) -> dict[str, int]:
    return {f"backend{i}": each for i in range(1, servers + 1)}


SEED_FIGURES: tuple[SeedFigures, ...] = (
    SeedFigures(10, "pick_first", 6.701, 12.780, 0.526, 7.49, {"backend6": 100},
                "all 100 requests to backend6"),
    SeedFigures(10, "round_robin", 1.235, 1.951, 0.546, 36.16, _even(10, 10),
                "exactly 10 requests per backend"),
    SeedFigures(10, "least_load", 1.234, 2.198, 0.521, 35.28,
                {"backend3": 7, "backend8": 6, "backend6": 11, "backend4": 13, "backend5": 8,
                 "backend1": 10, "backend9": 12, "backend2": 13, "backend7": 9,
                 "backend10": 11},
                "6..13 per backend"),
    SeedFigures(15, "pick_first", 7.013, 15.544, 0.526, 6.14, {"backend2": 100},
                "all 100 requests to backend2"),
    SeedFigures(15, "round_robin", 2.801, 4.873, 0.563, 17.50, None,
                "roughly even, e.g. backend9: 7, backend5: 7, backend3: 7, backend8: 7, "
                "backend13: 6"),
    SeedFigures(15, "least_load", 1.254, 1.999, 0.562, 38.61,
                {"backend3": 9, "backend8": 11, "backend15": 8, "backend6": 6, "backend4": 5,
                 "backend2": 10, "backend10": 9, "backend14": 6, "backend5": 7, "backend1": 7,
                 "backend11": 4, "backend13": 7, "backend9": 5, "backend7": 5, "backend12": 1},
                "1..11 per backend"),
)  # fmt: skip


def seed_figures(servers: int, policy: str, clients: int = SEED_CLIENTS) -> SeedFigures | None:
    """The seed's published figures for this case, or ``None`` if it never ran it."""
    for figures in SEED_FIGURES:
        if (figures.servers, figures.policy, figures.clients) == (servers, policy, clients):
            return figures
    return None
