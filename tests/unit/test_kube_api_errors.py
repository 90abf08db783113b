"""Which HTTP error answers mean "this node is gone" (churn) and which are scrape failures."""

from __future__ import annotations

import json

from fargate_insights.kube_api import NODE_GONE, _status_error

PATH = "/api/v1/nodes/fargate-ip-10-0-1-2.ec2.internal/proxy/metrics/cadvisor"


def _status(code: int, reason: str, details: dict | None) -> bytes:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code}
    body["message"] = 'nodes "fargate-ip-10-0-1-2.ec2.internal" not found'
    if details is not None:
        body["details"] = details
    return json.dumps(body).encode()


def test_api_server_not_found_for_the_node_is_node_gone() -> None:
    err = _status_error(404, PATH, _status(404, "NotFound", {"name": "x", "kind": "nodes"}))
    assert err.reason == NODE_GONE
    assert err.status == 404
    assert "not found" in str(err)


def test_kubelet_404_through_the_proxy_is_a_failure() -> None:
    # The node exists, but its kubelet does not serve the path: that is broken, not churn.
    assert _status_error(404, PATH, b"404 page not found\n").reason == "http_404"


def test_not_found_for_something_else_is_a_failure() -> None:
    assert _status_error(404, PATH, _status(404, "NotFound", {"kind": "pods"})).reason == "http_404"
    assert _status_error(404, PATH, _status(404, "NotFound", None)).reason == "http_404"


def test_other_statuses_keep_their_code() -> None:
    assert _status_error(503, PATH, _status(503, "ServiceUnavailable", None)).reason == "http_503"
    assert _status_error(500, PATH, b"\xff\xfe not json").reason == "http_500"
