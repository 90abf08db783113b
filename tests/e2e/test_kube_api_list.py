"""The node list against a scripted TLS server: answers that are JSON but not a node list, and throttling
that says to retry at once. Each must end as a `KubeApiError` with a reason (or a skipped item), never as
another exception that would crash the run, and never as a tight loop against the API server."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from fargate_insights.eks_auth import TokenProvider
from fargate_insights.kube_api import (
    LIST_PAGE_SIZE,
    MIN_LIST_PAGE_SIZE,
    MIN_RETRY_WAIT_S,
    KubeApiError,
    KubeClient,
)
from fargate_sim import ManualClock, SimulatedCluster

from .conftest import CLUSTER, REGION
from .tls_servers import RawTlsServer, chunked


def _answer(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _client(raw: RawTlsServer, waits: list[float] | None = None, max_body: int | None = None) -> KubeClient:
    return KubeClient(
        f"https://127.0.0.1:{raw.port}",
        raw.ca,
        token=lambda: "token",
        invalidate_token=lambda: None,
        request_timeout_s=5.0,
        sleep=(waits.append if waits is not None else time.sleep),
        **({"max_body_bytes": max_body} if max_body is not None else {}),
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


def _page(nodes: list[dict], following: str = "") -> bytes:
    return _answer(json.dumps({"items": nodes, "metadata": {"continue": following}}).encode())


def _node(name: str) -> dict:
    return {"metadata": {**NODE["metadata"], "name": name}}


def _limits(raw: RawTlsServer) -> list[tuple[int, str]]:
    """(limit, continue token) of each list request the server read."""
    asked = []
    for request in raw.requests:
        query = parse_qs(urlsplit(request.split(b" ")[1].decode()).query)
        asked.append((int(query["limit"][0]), query.get("continue", [""])[0]))
    return asked


OVER_THE_CAP = {
    "content-length": _answer(b" " * 5000),
    "chunked": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    + chunked(b" " * 5000, 1000),
}


@pytest.mark.parametrize("too_large", OVER_THE_CAP.values(), ids=OVER_THE_CAP.keys())
def test_a_page_over_the_cap_is_asked_again_with_half_the_limit_from_the_same_point(
    raw, too_large, caplog
) -> None:
    raw.answer(_page([_node("fargate-a")], "after-a"))
    raw.answer(too_large)
    raw.answer(_page([_node("fargate-b")]))
    client = _client(raw, max_body=4096)
    nodes = client.list_fargate_nodes(time.monotonic() + 5.0)
    assert [n.name for n in nodes] == ["fargate-a", "fargate-b"]
    half = LIST_PAGE_SIZE // 2
    assert _limits(raw) == [(LIST_PAGE_SIZE, ""), (LIST_PAGE_SIZE, "after-a"), (half, "after-a")]
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "smaller page" in warning.getMessage() and warning.page_size == half
    # a warm environment lists with the page size that fitted, not again from the default
    raw.answer(_page([_node("fargate-a"), _node("fargate-b")]))
    assert len(client.list_fargate_nodes(time.monotonic() + 5.0)) == 2
    assert _limits(raw)[-1] == (half, "")
    client.close()


def test_a_page_still_over_the_cap_at_the_smallest_limit_fails_the_listing_with_its_fix(raw) -> None:
    for _ in range(10):
        raw.answer(OVER_THE_CAP["content-length"])
    client = _client(raw, max_body=4096)
    with pytest.raises(KubeApiError) as raised:
        client.list_fargate_nodes(time.monotonic() + 5.0)
    assert raised.value.reason == "too_large"
    assert "kubectl get nodes" in str(raised.value) and f"page of {MIN_LIST_PAGE_SIZE} nodes" in str(
        raised.value
    )
    limits = [limit for limit, _ in _limits(raw)]
    assert limits == [500, 250, 125, 62, 31, 15, 8]
    client.close()


def test_smaller_pages_against_the_simulator_list_every_node_once(credentials, caplog) -> None:
    """The simulator's nodes carry managedFields, as real ones do (about 3 KB of metadata a node): with a
    64 KiB cap, pages of 500, 250, ..., 31 nodes are too large and the list goes on in pages of 15."""
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=40,
        seed=5,
        clock=ManualClock(float(int(time.time()))),
        credentials=credentials,
    ) as sim:
        tokens = TokenProvider(CLUSTER, boto3.session.Session(region_name=REGION), REGION)
        client = KubeClient(
            sim.endpoint,
            sim.ca_pem,
            token=tokens.token,
            invalidate_token=tokens.invalidate,
            max_body_bytes=65536,
        )
        nodes = client.list_fargate_nodes(time.monotonic() + 20.0)
        client.close()
    # 500 -> 250 -> 125 -> 62 -> 31 -> 15: the page size of each warning
    assert [r.page_size for r in caplog.records if r.levelname == "WARNING"] == [250, 125, 62, 31, 15]
    names = [node.name for node in nodes]
    assert len(names) == len(set(names)) == 40
    assert set(names) == {pod.node_name for pod in sim.pods}


@pytest.mark.parametrize(
    "error",
    [
        _answer(b"x" * 100_000, "503 Service Unavailable"),
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(b"overloaded\n" + b"x" * 100_000, 4096),
    ],
    ids=["content-length", "chunked"],
)
def test_an_error_answer_with_a_large_body_keeps_its_status_and_the_page_size(raw, error: bytes) -> None:
    """A large error page is an HTTP error, not a page of nodes over the cap: no smaller page is asked."""
    raw.answer(error)
    client = _client(raw, max_body=4096)
    with pytest.raises(KubeApiError) as raised:
        client.list_fargate_nodes(time.monotonic() + 5.0)
    assert (raised.value.reason, raised.value.status) == ("http_503", 503)
    assert _limits(raw) == [(LIST_PAGE_SIZE, "")]
    client.close()


def test_the_page_size_grows_back_after_a_full_page_well_under_the_cap(raw) -> None:
    half = LIST_PAGE_SIZE // 2
    raw.answer(_answer(b" " * 270_000))  # over the 256 KiB cap
    raw.answer(_page([_node(f"fargate-{i}") for i in range(half)], "after-half"))  # full, 39 KB
    raw.answer(_page([_node("fargate-last")]))
    client = _client(raw, max_body=256 * 1024)
    nodes = client.list_fargate_nodes(time.monotonic() + 5.0)
    assert len(nodes) == half + 1
    assert _limits(raw) == [(LIST_PAGE_SIZE, ""), (half, ""), (LIST_PAGE_SIZE, "after-half")]
    client.close()
