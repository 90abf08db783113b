"""The keep-alive HTTPS transport against a real TLS server on loopback that closes idle connections,
answers without reading to the end, stalls, or presents a certificate from another CA."""

from __future__ import annotations

import logging
import random
import socket
import ssl
import time

import pytest

from fargate_insights.https_transport import MAX_IDLE_S, HttpsPool, TransportError
from fargate_sim.tls import generate

from .tls_servers import BODY, CHUNKED_HEAD, TlsServer, chunked, length_answer


def _pool(srv: TlsServer, ca: str, max_idle: int = 4) -> HttpsPool:
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


def test_when_every_idle_connection_was_closed_by_the_server_the_retry_takes_a_fresh_one(server) -> None:
    srv, ca = server
    srv.close_after_answer = True
    pool = _pool(srv, ca)
    answers = [pool.get("/", {}, 5.0) for _ in range(3)]  # three at once: three idle connections after
    for answer in answers:
        assert answer.read(len(BODY) + 1) == BODY
        answer.close()
    assert len(pool._idle) == 3
    time.sleep(0.2)  # the server has closed all three
    assert _get(pool) == BODY  # one stale connection, then a fresh one: not a second stale one
    assert srv.connections == 4
    pool.close()


def test_a_connection_idle_longer_than_a_networks_flow_timeout_is_not_reused(server) -> None:
    """NAT gateways and load balancers forget a flow idle for 350 s, often without a word: a request on
    such a connection would hang until its timeout, so the pool does not reuse one that old."""
    srv, ca = server
    now = [1_000_000.0]
    pool = HttpsPool(
        "127.0.0.1", srv.server_address[1], ssl.create_default_context(cadata=ca), 4, clock=lambda: now[0]
    )
    assert _get(pool) == BODY
    now[0] += MAX_IDLE_S - 1  # a run a few minutes later: reused
    assert _get(pool) == BODY
    assert srv.connections == 1
    now[0] += MAX_IDLE_S + 1  # past the limit: closed, a fresh connection instead
    assert _get(pool) == BODY
    assert srv.connections == 2 and len(pool._idle) == 1
    now[0] += MAX_IDLE_S  # exactly the limit: still reused
    assert _get(pool) == BODY
    assert srv.connections == 2
    now[0] += MAX_IDLE_S + 0.001
    assert _get(pool) == BODY
    assert srv.connections == 3
    now[0] -= 60.0  # the clock stepped back: the age is unknown, so not reused
    assert _get(pool) == BODY
    assert srv.connections == 4
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


# -- framing, against a raw TLS server that sends exactly the bytes a test gives it ---------------------


CHUNKS_WITH_EXTRAS = (
    b"5;name=value\r\nhello\r\n"  # an extension
    b"1A ; a=b;c\r\nabcdefghijklmnopqrstuvwxyz\r\n"  # upper-case hex, whitespace before extensions
    b"0000\r\n"  # a last chunk written with leading zeros
    b"X-Checksum: abc\r\nX-Other: 1\r\n\r\n"  # trailers
)
DECODED_EXTRAS = b"helloabcdefghijklmnopqrstuvwxyz"


def _fetch(pool: HttpsPool, amount: int = 1 << 20) -> bytes:
    answer = pool.get("/", {"Accept": "text/plain"}, 5.0)
    try:
        return answer.read(amount)
    finally:
        answer.close()


def _error(pool: HttpsPool) -> TransportError:
    with pytest.raises(TransportError) as raised:
        _fetch(pool)
    return raised.value


def test_a_chunked_answer_with_extensions_and_trailers_is_decoded_and_its_connection_reused(raw) -> None:
    raw.answer(CHUNKED_HEAD + CHUNKS_WITH_EXTRAS)
    raw.answer(CHUNKED_HEAD + CHUNKS_WITH_EXTRAS)
    pool = raw.pool()
    assert _fetch(pool) == DECODED_EXTRAS
    assert _fetch(pool) == DECODED_EXTRAS
    assert (len(raw.requests), raw.connections) == (2, 1)
    pool.close()


@pytest.mark.parametrize("amount", [1, 3, 7, 1 << 20])
def test_an_answer_split_at_every_byte_is_decoded_in_reads_of_any_size(raw, amount) -> None:
    body = bytes(range(256)) * 3
    framed = chunked(body, 100).removesuffix(b"0\r\n\r\n") + b"0;last\r\nX-Checksum: abc\r\n\r\n"
    whole = CHUNKED_HEAD + framed
    raw.answer([whole[i : i + 1] for i in range(len(whole))])
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    pool = raw.pool()
    answer = pool.get("/", {}, 5.0)
    got = b""
    while piece := answer.read(amount):
        assert len(piece) <= amount
        got += piece
    answer.close()
    assert got == body
    assert _fetch(pool) == b"ok"
    assert raw.connections == 1  # read to its end (trailers included): reused
    pool.close()


@pytest.mark.parametrize(
    "cut",
    [
        b"100\r\n" + b"a" * 50,  # mid-data
        b"5\r\nhello",  # before a chunk's CRLF
        b"5\r\nhello\r\n",  # before the last chunk
        b"5\r\nhello\r\n1",  # mid size line
        b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n",  # mid trailers
    ],
)
def test_a_chunked_answer_cut_short_by_a_close_is_a_connection_error(raw, cut) -> None:
    raw.answer(CHUNKED_HEAD + cut, after="close")
    error = _error(raw.pool())
    assert error.reason == "connection"


def test_a_body_shorter_than_its_content_length_is_a_connection_error(raw) -> None:
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"a" * 40, after="close")
    error = _error(raw.pool())
    assert error.reason == "connection"
    assert "60 bytes short" in str(error)


@pytest.mark.parametrize("after", ["close", "unwrap"])
@pytest.mark.parametrize("status_line", [b"HTTP/1.0 200 OK", b"HTTP/1.1 200 OK"])
def test_a_body_without_length_is_read_to_the_close_and_the_connection_not_reused(
    raw, after, status_line
) -> None:
    body = b"b" * 70_000
    raw.answer(
        [status_line + b"\r\nContent-Type: text/plain\r\n\r\n", body[:30_000], body[30_000:]], after=after
    )
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    pool = raw.pool()
    assert _fetch(pool) == body
    assert _fetch(pool) == b"ok"
    assert raw.connections == 2
    pool.close()


def test_http_1_0_keeps_the_connection_only_when_the_server_says_keep_alive(raw) -> None:
    raw.answer(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nk1")
    raw.answer(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nk2")  # kept open, but 1.0 without keep-alive
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nk3")
    pool = raw.pool()
    assert [_fetch(pool) for _ in range(3)] == [b"k1", b"k2", b"k3"]
    assert raw.connections == 2
    pool.close()


@pytest.mark.parametrize(
    "first",
    [
        # The server would keep it open: the client must not reuse it anyway.
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nc1",
        # Junk after a Content-Length body must not reach the next answer.
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nc1HTTP/1.1 200 OK\r\n",
    ],
    ids=["connection-close", "junk-after-the-body"],
)
def test_a_connection_that_cannot_carry_the_next_answer_is_not_reused(raw, first: bytes) -> None:
    raw.answer(first)
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nc2")
    pool = raw.pool()
    assert _fetch(pool) == b"c1"
    assert _fetch(pool) == b"c2"
    assert raw.connections == 2
    pool.close()


def test_interim_answers_before_the_answer_are_skipped(raw) -> None:
    interim = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    )
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    raw.answer(interim + answer)
    raw.answer([interim[:10], interim[10:30], interim[30:] + answer[:5], answer[5:]])
    pool = raw.pool()
    for _ in range(2):
        got = pool.get("/", {}, 5.0)
        assert got.status == 200 and got.headers.get("Link") is None
        assert got.read(100) == b"ok"
        got.close()
    assert raw.connections == 1
    pool.close()


@pytest.mark.parametrize(
    "size", [b"zz", b"0x5", b"-5", b"+5", b"5_0", b"", b" ", b"5 5", b"fffffffffffffffff", b"\xff"]
)
def test_an_invalid_chunk_size_is_a_connection_error(raw, size) -> None:
    raw.answer(CHUNKED_HEAD + b"1\r\na\r\n" + size + b"\r\n" + b"a" * 10 + b"\r\n0\r\n\r\n")
    error = _error(raw.pool())
    assert error.reason == "connection"
    assert "chunk" in str(error)


def test_a_chunk_not_followed_by_crlf_is_a_connection_error(raw) -> None:
    raw.answer(CHUNKED_HEAD + b"5\r\nhelloXX0\r\n\r\n")
    assert _error(raw.pool()).reason == "connection"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 099 Odd\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName : x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\rC: d\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    ],
)
def test_a_malformed_header_block_is_a_connection_error(raw, answer) -> None:
    raw.answer(answer)  # the connection stays open: the error comes from the bytes, not a close
    with pytest.raises(TransportError) as raised:
        raw.pool().get("/", {}, 5.0)
    assert raised.value.reason == "connection"


def test_header_lines_ending_in_bare_lfs_are_an_error_at_once(raw) -> None:
    """Not a wait for a CRLF CRLF that never comes (here, until the server gives up after 5 s)."""
    raw.answer(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")
    started = time.monotonic()
    error = _error(raw.pool())
    assert time.monotonic() - started < 2.5
    assert error.reason == "connection" and "bare LF" in str(error)


def test_a_repeated_content_length_with_one_value_is_accepted(raw) -> None:
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello")
    assert _fetch(raw.pool()) == b"hello"


def test_a_header_block_over_64_kib_is_a_connection_error(raw) -> None:
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 1000) for i in range(70))
    raw.answer(b"HTTP/1.1 200 OK\r\n" + filler + b"Content-Length: 2\r\n\r\nok")
    error = _error(raw.pool())
    assert error.reason == "connection"
    assert "64 KiB" in str(error)


def test_a_header_block_just_under_64_kib_is_read(raw) -> None:
    filler = b"".join(b"X-Filler-%02d: %s\r\n" % (i, b"f" * 1000) for i in range(63))
    raw.answer(b"HTTP/1.1 200 OK\r\n" + filler + b"Content-Length: 2\r\n\r\nok")
    assert _fetch(raw.pool()) == b"ok"


def test_header_names_are_case_insensitive(raw) -> None:
    raw.answer(
        b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\nCONTENT-ENCODING:identity\r\n"
        b"Retry-After:  3 \r\nX-Dup: a\r\nx-dup: b\r\nContent-Length: 2\r\n\r\nno"
    )
    pool = raw.pool()
    answer = pool.get("/", {}, 5.0)
    assert answer.status == 429
    assert answer.headers.get("Content-Type") == "text/plain"
    assert answer.headers.get("Content-Encoding") == "identity"
    assert answer.headers.get("retry-after") == "3"
    assert answer.headers.get("Content-Length") == "2"
    assert answer.headers["X-DUP"] == "a, b"
    assert answer.headers.get("Location") is None
    assert answer.headers.get("Location", "-") == "-" and answer.headers.get("x-dup", "-") == "a, b"
    assert "CONTENT-TYPE" in answer.headers
    assert answer.read(10) == b"no"
    answer.close()
    pool.close()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/", {"X-Evil": "a\r\nInjected: yes"}),
        ("/", {"X-Evil": "a\nInjected: yes"}),
        ("/", {"X-Evil": "a\rInjected: yes"}),
        ("/", {"X-Evil\r\nInjected": "yes"}),
        ("/a\r\nInjected: yes", {}),
        ("/a HTTP/1.1\r\n", {}),
        ("/a b", {}),
        ("/a\x00", {}),
        ("/caf\u00e9", {}),
        ("/", {"X-Evil": "\u2028"}),
    ],
)
def test_cr_or_lf_in_a_request_header_or_path_is_refused_before_anything_is_sent(raw, path, headers) -> None:
    pool = raw.pool()
    with pytest.raises(ValueError):
        pool.get(path, headers, 5.0)
    time.sleep(0.05)
    assert raw.connections == 0 and raw.requests == []


def test_the_request_is_one_well_formed_get(raw) -> None:
    raw.answer(b"HTTP/1.1 204 No Content\r\n\r\n")
    pool = raw.pool()
    answer = pool.get("/api/v1/nodes?limit=5", {"Authorization": "Bearer t", "Accept": "text/plain"}, 5.0)
    assert answer.status == 204 and answer.read(10) == b""
    answer.close()
    assert raw.requests == [
        b"GET /api/v1/nodes?limit=5 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer t\r\nAccept: text/plain"
        % raw.port
    ]
    assert pool._idle  # a 204 has no body: done at once, reused
    pool.close()


def test_many_answers_on_one_reused_connection_come_back_byte_exact(raw) -> None:
    rng = random.Random(7)
    bodies = [rng.randbytes(rng.choice([0, 1, 100, 4096, 11_000, 70_000, 300_000])) for _ in range(40)]
    for i, body in enumerate(bodies):
        if i % 3 == 0:
            raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        else:
            whole = CHUNKED_HEAD + chunked(
                body,
                rng.choice([1, 7, 4096, 16_384, 100_000] if len(body) < 20_000 else [4096, 16_384, 100_000]),
            )
            cut = rng.randrange(len(whole))
            raw.answer([whole[:cut], whole[cut:]])
    pool = raw.pool()
    for body in bodies:
        assert _fetch(pool, len(body) + 1) == body
    assert (len(raw.requests), raw.connections) == (len(bodies), 1)
    pool.close()


def test_a_read_that_stalls_mid_body_is_a_timeout(raw) -> None:
    raw.answer([CHUNKED_HEAD + b"5\r\nhel"])  # and then nothing, the connection kept open
    pool = raw.pool()
    answer = pool.get("/", {}, 0.3)
    with pytest.raises(TransportError) as raised:
        answer.read(100)
    assert raised.value.reason == "timeout"
    answer.close()
    assert not pool._idle
    pool.close()


def test_requests_are_logged_at_debug_without_header_values(raw, caplog) -> None:
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    caplog.set_level(logging.DEBUG, logger="fargate_insights.https_transport")
    pool = raw.pool()
    answer = pool.get("/metrics", {"Authorization": "Bearer secret-token"}, 5.0)
    answer.close()
    pool.close()
    assert "GET /metrics: HTTP 200" in caplog.text
    assert "secret-token" not in caplog.text


@pytest.mark.parametrize("where", ["headers", "body"])
def test_the_timeout_bounds_the_whole_request_not_each_read(raw, where) -> None:
    """A server that trickles its answer (each byte well within the timeout) is cut at the timeout."""
    body = b"0123456789"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    if where == "headers":
        pieces = [head[i : i + 4] for i in range(0, len(head), 4)] + [body]
    else:
        pieces = [head] + [body[i : i + 1] for i in range(len(body))]
    raw.answer(pieces, pause_s=0.1)
    pool = raw.pool()
    started = time.monotonic()
    with pytest.raises(TransportError) as raised:
        answer = pool.get("/", {}, 0.35)
        try:
            answer.read(100)
        finally:
            answer.close()
    assert raised.value.reason == "timeout"
    assert time.monotonic() - started < 0.6
    pool.close()


def test_an_idle_connection_the_server_wrote_to_is_not_reused(raw) -> None:
    """Bytes that came after an answer (here a whole second answer) must not be read as the next one."""

    raw.answer([length_answer(b"page-1"), length_answer(b"EXTRA")], pause_s=0.2)
    raw.answer(length_answer(b"page-2"))
    pool = raw.pool()
    assert _fetch(pool) == b"page-1"
    time.sleep(0.4)  # the extra answer arrives while the connection is idle
    assert _fetch(pool) == b"page-2"
    assert raw.connections == 2  # a fresh connection for the second request
    pool.close()


def test_an_idle_connection_is_still_reused_after_tls_session_tickets(raw) -> None:
    """TLS 1.3 sends session tickets after the handshake: TLS's own messages, not bytes of an answer."""
    pool = raw.pool()
    for text in (b"one", b"two", b"three"):
        raw.answer(length_answer(text))
        assert _fetch(pool) == text
        time.sleep(0.05)
    assert raw.connections == 1
    pool.close()
