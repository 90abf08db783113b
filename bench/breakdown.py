"""Where one node's CPU goes: the collector's steps timed with `time.thread_time`, one node at a time.

cProfile's numbers are distorted by its own per-call cost on a path this short, and its wall-clock
default counts waiting as work; this wraps each step once and measures only CPU, on a single thread.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

# (module, attribute, label): the steps of one node, outermost first.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("fargate_insights.kube_api", "KubeClient._headers", "the request's headers (token)"),
    ("ssl", "SSLSocket.send", "sending the request (TLS)"),
    ("ssl", "SSLSocket.recv", "receiving the answer (TLS)"),
    ("fargate_insights.https_transport", "HttpsPool.read_answer", "the answer's status line and headers"),
    ("fargate_insights.kube_api", "KubeClient._read_capped", "reading the (chunked) body"),
    ("fargate_insights.kube_api", "_decode_body", "gunzip"),
    ("fargate_insights.collector", "extract", "extraction"),
    ("fargate_insights.collector", "compute", "counters and the eight metrics"),
    ("fargate_insights.emf", "PodDocumentBuilder.build", "Powertools EMF document"),
    ("fargate_insights.collector", "dumps", "JSON of the document"),
)


@contextmanager
def timed_steps() -> Iterator[dict[str, float]]:
    """Wrap each step for the duration of the block; yields CPU seconds per step label."""
    import importlib

    spent: dict[str, float] = defaultdict(float)
    restore: list[tuple[Any, str, Any]] = []
    for module_name, attribute, label in STEPS:
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)
        setattr(owner, name, _timed(original, label, spent))
        restore.append((owner, name, original))
    try:
        yield spent
    finally:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)


def _timed(function: Callable[..., Any], label: str, spent: dict[str, float]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - started

    return wrapper


class FirstNodes:
    """The benchmark's cluster seen through a window of its first `count` nodes, listed once: the
    listing is a per-run cost, shared by all the cluster's nodes, not a per-node one."""

    def __init__(self, kube: Any, count: int) -> None:
        self._kube = kube
        self._nodes: list[Any] = kube.list_fargate_nodes(time.monotonic() + 60)[:count]

    def list_fargate_nodes(self, deadline: float) -> list[Any]:
        return list(self._nodes)

    def scrape_cadvisor(self, nodes: list[Any], deadline: float, max_in_flight: int, timeout_s: float) -> Any:
        return self._kube.scrape_cadvisor(nodes, deadline, max_in_flight, timeout_s)


def sequential_breakdown(kube: Any, nodes: int) -> tuple[dict[str, float], float]:
    """Per-node CPU (ms) of each step and in all, collecting `nodes` nodes one at a time."""
    import resource

    from fargate_insights.collector import Collector, CollectorState
    from fargate_insights.kube_api import KubeClient

    window = cast(KubeClient, FirstNodes(kube, nodes))  # the two methods the collector calls
    collector = Collector("bench", window, CollectorState(), sink=lambda _line, _pod: None, max_in_flight=1)
    collector.run(time.monotonic() + 300)  # first samples, so the measured pass computes rates
    with timed_steps() as spent:
        before = resource.getrusage(resource.RUSAGE_SELF)
        report = collector.run(time.monotonic() + 300)
        after = resource.getrusage(resource.RUSAGE_SELF)
    done = max(1, report.nodes_scraped)
    total_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {label: seconds * 1000 / done for label, seconds in spent.items()}, total_s * 1000 / done
