"""Which HTTP error answers mean "this node is gone" (churn) and which are scrape failures."""

from __future__ import annotations

import json

import pytest

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


def test_a_text_error_answer_keeps_its_first_line_in_the_message() -> None:
    # The API server's max-in-flight and priority-and-fairness filters answer 429 with Go's http.Error.
    err = _status_error(429, PATH, b"Too many requests, please try again later.\n")
    assert str(err) == f"GET {PATH}: HTTP 429 Too many requests, please try again later."
    assert str(_status_error(404, PATH, b"404 page not found\n")).endswith("HTTP 404 404 page not found")
    long_line = _status_error(502, PATH, b"upstream " + b"x" * 1000 + b"\nsecond line")
    assert str(long_line).endswith("x…") and "second line" not in str(long_line)
    assert len(str(long_line)) < len(PATH) + 230
    html = _status_error(502, PATH, b"<!DOCTYPE html>\n<html><body>Bad Gateway</body></html>")
    assert str(html) == f"GET {PATH}: HTTP 502 (an HTML page)"
    assert str(_status_error(500, PATH, b"Internal\tError\n")).endswith("HTTP 500 Internal Error")


def test_an_error_body_nested_past_the_json_parsers_depth_is_only_text() -> None:
    err = _status_error(500, PATH, b"[" * 60000)
    assert err.reason == "http_500" and str(err).endswith("HTTP 500 " + "[" * 200 + "…")


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", ""),  # a gzip header: binary
        (b"\xff\xfe not json", ""),
        (b"bell \x07 here", ""),
        (b"", ""),
        (b"[1, 2]", " [1, 2]"),  # JSON, but not a Status object: shown as text
    ],
    ids=["gzip", "not-utf8", "control-character", "empty", "json-list"],
)
def test_only_printable_text_of_an_error_answer_is_shown(body: bytes, shown: str) -> None:
    assert str(_status_error(500, PATH, body)) == f"GET {PATH}: HTTP 500{shown}"
