"""A readable table of the pod documents a run wrote, as an operator would want to eyeball them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .names import CI_NAMESPACE

_COLUMNS = ("NAMESPACE", "POD", "CPU (m)", "CPU %LIM", "MEMORY", "MEM %LIM", "NET RX/s", "NET TX/s")


def pod_documents(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The Container Insights pod documents among log lines (other lines are skipped)."""
    documents = []
    for line in lines:
        if '"_aws"' not in line:
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        directives = document.get("_aws", {}).get("CloudWatchMetrics", [])
        if any(d.get("Namespace") == CI_NAMESPACE for d in directives):
            documents.append(document)
    return documents


def render(documents: list[dict[str, Any]]) -> str:
    """One row per pod document, sorted by namespace and pod; "-" where a metric is absent."""
    rows = [
        (
            str(doc.get("Namespace", "")),
            str(doc.get("PodName", "")),
            _number(_value(doc, "pod_cpu_usage_total"), "{:.1f}"),
            _number(_value(doc, "pod_cpu_utilization_over_pod_limit"), "{:.1f}%"),
            _bytes(_value(doc, "pod_memory_working_set")),
            _number(_value(doc, "pod_memory_utilization_over_pod_limit"), "{:.1f}%"),
            _bytes(_value(doc, "pod_network_rx_bytes"), "/s"),
            _bytes(_value(doc, "pod_network_tx_bytes"), "/s"),
        )
        for doc in sorted(documents, key=lambda d: (str(d.get("Namespace")), str(d.get("PodName"))))
    ]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(_COLUMNS)]
    return "\n".join(_line(row, widths) for row in [_COLUMNS, *rows])


def _value(document: dict[str, Any], name: str) -> Any:
    """A metric's value: Powertools writes each one as a one-element list, a plain number is accepted too."""
    value = document.get(name)
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    """Names left-aligned, numbers right-aligned."""
    return "  ".join(
        cell.ljust(width) if i < 2 else cell.rjust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    )


def _number(value: Any, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _bytes(value: Any, suffix: str = "") -> str:
    if not isinstance(value, int | float):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}{suffix}" if unit == "B" else f"{value:.1f} {unit}{suffix}"
        value /= 1024
    return "-"  # pragma: no cover
