"""Fault injection: which proxy request fails, and how, decided deterministically from a seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

FAULT_KINDS = (
    "http500",
    "http502",
    "http503",
    "http403",
    "http404",
    "timeout",
    "reset",
    "truncated_gzip",
    "cut_chunked",
    "not_metrics",
    "huge",
    "garbage",
)
# Quick faults: the default for a random fault rate, so a demo never hangs or streams 64 MB.
DEFAULT_RANDOM_KINDS = (
    "http500",
    "http502",
    "http503",
    "reset",
    "truncated_gzip",
    "cut_chunked",
    "not_metrics",
    "garbage",
)


@dataclass
class Faults:
    """What goes wrong: random proxy faults, throttled lists, and expired-looking tokens.

    ``rate`` of proxy requests fail with a kind drawn from ``kinds``; the draw depends only on
    (seed, node, how many times that node was asked), so a run replays exactly. ``sticky`` makes the
    draw per node instead (the same nodes fail on every request, retries included).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = DEFAULT_RANDOM_KINDS
    seed: int | None = None
    sticky: bool = False
    timeout_s: float = 30.0
    huge_bytes: int = 64 * 1024 * 1024
    list_throttle: int = 0
    retry_after_s: int = 1
    # The first N list pages asked for with a continue token get 410 Expired, as when etcd has compacted
    # the resourceVersion the token points at (the real server's answer for a list taken too slowly).
    expire_continue: int = 0
    unauthorized_first: int = 0
    node_faults: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Reject unknown kinds early, where the typo is."""
        for kind in (*self.kinds, *self.node_faults.values()):
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")

    def pick(self, node: str, attempt: int, default_seed: int) -> str | None:
        """The fault for this node's ``attempt``-th proxy request, or None."""
        explicit = self.node_faults.get(node)
        if explicit is not None:
            return explicit
        if self.rate <= 0 or not self.kinds:
            return None
        seed = self.seed if self.seed is not None else default_seed
        rng = random.Random(f"{seed}:{node}" if self.sticky else f"{seed}:{node}:{attempt}")
        if rng.random() < self.rate:
            return self.kinds[rng.randrange(len(self.kinds))]
        return None


def garbage_body(payload: bytes, seed: str) -> bytes:
    """The real payload with malformed lines and random bytes mixed in (deterministic per seed)."""
    rng = random.Random(seed)
    bad = [
        b'container_cpu_usage_seconds_total{container="",id="/" 12.5 1700000000000',
        b'container_memory_working_set_bytes{container="",pod="x"} not-a-number',
        b'container_memory_rss{container="",id="/broken} 1',
        b'container_network_receive_bytes_total{interface="eth0"} 1 2 3',
        b'container_spec_cpu_quota{container="",id="/"} 100000 1.5',
        b"# TYPE container_cpu_usage_seconds_total counter",
        b"\xff\xfe\x00garbage\x80\x81",
        b'@bad_metric_name{a="b"} 1',
        b'container_last_seen{__name__="x"} 1',
    ]
    out: list[bytes] = []
    for line in payload.split(b"\n"):
        roll = rng.random()
        if roll < 0.03:
            out.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(5, 60))).replace(b"\n", b" "))
        elif roll < 0.08:
            out.append(rng.choice(bad))
        if roll > 0.995:
            out.append(line[: len(line) // 2])  # a cut-off line replaces the real one
            continue
        out.append(line)
    return b"\n".join(out)


NOT_METRICS_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>\n"
    b"<body><h1>Service Unavailable</h1><p>The kubelet is restarting. Please try again later.</p>"
    b"<hr><address>nginx</address></body></html>\n"
)
