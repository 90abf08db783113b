"""The keep-alive HTTPS transport against a real TLS server on loopback that closes idle connections,
answers without reading to the end, stalls, or presents a certificate from another CA."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from fargate_insights.https_transport import HttpsPool, TransportError
from fargate_sim.tls import generate, server_context

BODY = b"x" * 5000


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self.server.requests += 1
        if self.path == "/stall":
            time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
        if self.server.close_after_answer:
            # As an idle timeout does: closed without "Connection: close", after the answer.
            self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    requests = 0
    connections = 0
    close_after_answer = False

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-answer is part of these tests."""

    def get_request(self) -> tuple[socket.socket, object]:
        raw, address = super().get_request()
        self.connections += 1
        return self.tls.wrap_socket(raw, server_side=True), address


@pytest.fixture
def server() -> Iterator[tuple[_Server, str]]:
    ca, chain, key = generate()
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.tls = server_context(chain, key)  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, ca
    srv.shutdown()
    srv.server_close()


def _pool(srv: _Server, ca: str, max_idle: int = 4) -> HttpsPool:
    return HttpsPool("127.0.0.1", srv.server_address[1], ssl.create_default_context(cadata=ca), max_idle)


def _get(pool: HttpsPool, path: str = "/", timeout_s: float = 5.0) -> bytes:
    answer = pool.get(path, {"Accept": "text/plain"}, timeout_s)
    try:
        assert answer.status == 200
        return answer.read(len(BODY) + 1)
    finally:
        answer.close()


def test_connections_are_reused(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    for _ in range(5):
        assert _get(pool) == BODY
    assert (srv.requests, srv.connections) == (5, 1)
    pool.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_once(server) -> None:
    srv, ca = server
    srv.close_after_answer = True
    pool = _pool(srv, ca)
    assert _get(pool) == BODY
    time.sleep(0.2)  # the server has closed it by now; the pool still holds it as idle
    assert _get(pool) == BODY  # retried on a fresh connection, not an error
    assert srv.requests == 2 and srv.connections == 2
    pool.close()


def test_an_answer_not_read_to_the_end_closes_its_connection(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    answer = pool.get("/", {}, 5.0)
    assert answer.read(10) == BODY[:10]
    answer.close()  # the rest is unread: the connection must not serve the next request
    assert _get(pool) == BODY
    assert srv.connections == 2
    pool.close()


def test_idle_connections_are_capped(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca, max_idle=2)
    answers = [pool.get("/", {}, 5.0) for _ in range(4)]  # four at once: four connections
    for answer in answers:
        answer.read(len(BODY) + 1)
        answer.close()
    assert len(pool._idle) == 2
    for _ in range(3):
        _get(pool)
    assert srv.connections == 4  # the kept ones serve the next requests; the other two were closed
    assert len(pool._idle) == 2
    pool.close()


def test_a_stalled_answer_is_a_timeout(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    started = time.monotonic()
    with pytest.raises(TransportError) as raised:
        _get(pool, "/stall", timeout_s=0.3)
    assert raised.value.reason == "timeout"
    assert time.monotonic() - started < 0.9
    pool.close()


def test_a_certificate_from_another_ca_is_refused(server) -> None:
    srv, _ = server
    other_ca = generate()[0]
    pool = _pool(srv, other_ca)
    with pytest.raises(TransportError) as raised:
        _get(pool)
    assert raised.value.reason == "tls"
    assert srv.requests == 0  # nothing (no token) was sent
    pool.close()


def test_a_closed_port_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pool = HttpsPool("127.0.0.1", port, ssl.create_default_context(cadata=generate()[0]), 4)
    with pytest.raises(TransportError) as raised:
        _get(pool)
    assert raised.value.reason == "connection"
    assert "could not connect" in str(raised.value)
