"""The node list against a scripted TLS server: answers that are JSON but not a node list, and throttling
that says to retry at once. Each must end as a `KubeApiError` with a reason (or a skipped item), never as
another exception that would crash the run, and never as a tight loop against the API server."""

from __future__ import annotations

import json
import time

import pytest

from fargate_insights.kube_api import MIN_RETRY_WAIT_S, KubeApiError, KubeClient

from .tls_servers import RawTlsServer


def _answer(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _client(raw: RawTlsServer, waits: list[float] | None = None) -> KubeClient:
    return KubeClient(
        f"https://127.0.0.1:{raw.port}",
        raw.ca,
        token=lambda: "token",
        invalidate_token=lambda: None,
        request_timeout_s=5.0,
        sleep=(waits.append if waits is not None else time.sleep),
    )


NODE = {
    "metadata": {
        "name": "fargate-ip-10-0-0-1.ec2.internal",
        "labels": {"eks.amazonaws.com/compute-type": "fargate", "kubernetes.io/hostname": "ip-10-0-0-1"},
    }
}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # nested past the JSON parser's recursion limit
        json.dumps({"items": 5}).encode(),
        json.dumps({"items": {"a": NODE}}).encode(),
        json.dumps({"items": [NODE], "metadata": {"continue": 7}}).encode(),
    ],
    ids=["nested-too-deep", "items-a-number", "items-an-object", "continue-a-number"],
)
def test_a_list_answer_that_is_not_a_node_list_is_a_bad_response(raw, body) -> None:
    raw.answer(_answer(body))
    client = _client(raw)
    with pytest.raises(KubeApiError) as raised:
        client.list_fargate_nodes(time.monotonic() + 5.0)
    assert raised.value.reason == "bad_response"
    client.close()


@pytest.mark.parametrize(
    "page",
    [
        {"items": [NODE, {"metadata": []}, {"metadata": "x"}, 5], "metadata": "not an object"},
        {"items": [NODE, {"metadata": {"name": 3}}], "metadata": {"continue": ""}},
    ],
    ids=["odd-items-and-metadata", "a-name-that-is-not-a-string"],
)
def test_items_that_are_not_nodes_are_skipped_and_the_nodes_kept(raw, page) -> None:
    raw.answer(_answer(json.dumps(page).encode()))
    client = _client(raw)
    nodes = client.list_fargate_nodes(time.monotonic() + 5.0)
    assert [(n.name, n.hostname) for n in nodes] == [("fargate-ip-10-0-0-1.ec2.internal", "ip-10-0-0-1")]
    client.close()


def test_retry_after_zero_backs_off_instead_of_asking_again_at_once(raw) -> None:
    throttled = _answer(b'{"kind":"Status","code":429}', "429 Too Many Requests", "Retry-After: 0\r\n")
    for _ in range(3):
        raw.answer(throttled)
    raw.answer(_answer(json.dumps({"items": [NODE]}).encode()))
    waits: list[float] = []
    client = _client(raw, waits)
    nodes = client.list_fargate_nodes(time.monotonic() + 30.0)
    assert len(nodes) == 1 and len(raw.requests) == 4
    assert waits == [MIN_RETRY_WAIT_S, 2 * MIN_RETRY_WAIT_S, 4 * MIN_RETRY_WAIT_S]
    client.close()


def test_throttling_that_outlasts_the_deadline_is_reported_as_throttling(raw) -> None:
    throttled = _answer(b'{"kind":"Status","code":429}', "429 Too Many Requests", "Retry-After: 0\r\n")
    for _ in range(10):
        raw.answer(throttled)
    waits: list[float] = []
    client = _client(raw, waits)
    with pytest.raises(KubeApiError) as raised:
        client.list_fargate_nodes(time.monotonic() + 3.0)
    assert raised.value.reason == "http_429"
    # (the waits are recorded, not slept) the fourth, 4 s, would end past the deadline: no fifth request
    assert waits == [0.5, 1.0, 2.0] and len(raw.requests) == 4
    client.close()
