"""What extraction costs inside the concurrent run, where microbenchmarks understate it.

One run records each node's extraction; the next reuses them: its scrapes still make the request, read
the body and gunzip it, and the rest of the run is unchanged, but nothing is extracted. The difference
in CPU per node is extraction's share of the real run. (The reused samples repeat the recorded run's
timestamps, so that run computes no rates and its documents have fewer metrics: its EMF work is a
little smaller, and the difference a little larger than extraction alone.)
"""

from __future__ import annotations

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
    """Give the collector's `extract(payload)` the node it scraped."""
    from fargate_insights import cadvisor, collector
    from fargate_insights.kube_api import KubeClient

    nodes: dict[int, str] = {}
    scrape = KubeClient.scrape_cadvisor

    def scrape_noting_nodes(self: KubeClient, *args: Any) -> _NotingNodes:
        return _NotingNodes(scrape(self, *args), nodes)

    def extract_for_node(payload: bytes) -> Any:
        return extraction(nodes[id(payload)], cadvisor.extract, payload)

    with (
        mock.patch.object(KubeClient, "scrape_cadvisor", scrape_noting_nodes),
        mock.patch.object(collector, "extract", extract_for_node),
    ):
        yield


class _NotingNodes:
    """A run's scrapes, noting which node each payload of the current batch came from: the collector
    extracts a batch's payloads while the batch is alive, so a payload object's identity names its node."""

    def __init__(self, scrapes: Any, nodes: dict[int, str]) -> None:
        self._scrapes = scrapes
        self._nodes = nodes

    def __iter__(self) -> Iterator[list[tuple[Any, Any]]]:
        for batch in self._scrapes:
            self._nodes.clear()
            self._nodes.update((id(outcome), node.name) for node, outcome in batch)
            yield batch

    @property
    def peak_in_flight(self) -> int:
        return int(self._scrapes.peak_in_flight)
