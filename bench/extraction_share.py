"""What extraction costs inside the concurrent run, where microbenchmarks understate it.

One run records each node's extraction; the next reuses them: its scrapes still make the request, read
the body and gunzip it, and the rest of the run is unchanged, but nothing is extracted. The difference
in CPU per node is extraction's share of the real run. (The reused samples repeat the recorded run's
timestamps, so that run computes no rates and its documents have fewer metrics: its EMF work is a
little smaller, and the difference a little larger than extraction alone.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from .measure import CountingStdout, HandlerRun, invoke_handler


def recorded_and_reused(sink: CountingStdout, timeout_s: float) -> tuple[HandlerRun, HandlerRun]:
    """A normal run that records every node's extraction, then a run that reuses them."""
    saved: dict[str, Any] = {}
    with _extraction_per_node(lambda node, extract, payload: saved.setdefault(node, extract(payload))):
        recorded = invoke_handler(sink, timeout_s)
    with _extraction_per_node(lambda node, extract, payload: saved.get(node) or extract(payload)):
        reused = invoke_handler(sink, timeout_s)
    return recorded, reused


@contextmanager
def _extraction_per_node(extraction: Callable[[str, Callable[[bytes], Any], bytes], Any]) -> Iterator[None]:
    """Give the collector's `extract(payload)` the node it scraped (fetch and extract share a thread)."""
    from fargate_insights import cadvisor, collector
    from fargate_insights.kube_api import KubeClient

    current = threading.local()
    fetch = KubeClient.fetch_cadvisor

    def fetch_noting_node(self: KubeClient, node: str, timeout_s: float) -> bytes:
        current.node = node
        return fetch(self, node, timeout_s)

    def extract_for_node(payload: bytes) -> Any:
        return extraction(current.node, cadvisor.extract, payload)

    with (
        mock.patch.object(KubeClient, "fetch_cadvisor", fetch_noting_node),
        mock.patch.object(collector, "extract", extract_for_node),
    ):
        yield
