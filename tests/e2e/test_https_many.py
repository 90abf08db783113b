"""Many GETs on one thread (`ManyGets`) against real TLS servers on loopback: the in-flight cap, reused and
stale connections, timeouts, the deadline, retries, answers arriving a byte at a time, and failures that
must cost only their own key."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from fargate_insights.https_many import Again, ManyGets
from fargate_insights.https_transport import MAX_IDLE_S, Answer, HttpsPool, TransportError
from fargate_sim.tls import generate

from .tls_servers import BODY, CHUNKED_HEAD, RawTlsServer, TlsServer, chunked, length_answer


def _pool(srv: TlsServer, ca: str) -> HttpsPool:
    return HttpsPool("127.0.0.1", srv.server_address[1], ssl.create_default_context(cadata=ca), 8)


def _plain_request(path: str) -> tuple[str, dict[str, str]]:
    return path, {"Accept": "text/plain"}


def _body(path: str, answer: Answer) -> bytes:
    body = answer.read(1 << 20)
    if answer.status != 200:
        raise LookupError(f"{path}: HTTP {answer.status}")
    return body


def _many(
    pool: HttpsPool,
    keys: list[str],
    max_in_flight: int = 4,
    timeout_s: float = 5.0,
    deadline_s: float = 10.0,
    read: Callable[[str, Answer], bytes] = _body,
    request: Callable[[str], tuple[str, dict[str, str]]] = _plain_request,
    **options: int,
) -> ManyGets[str, bytes]:
    deadline = time.monotonic() + deadline_s
    return ManyGets(pool, keys, request, read, max_in_flight, timeout_s, deadline, **options)


def _results(many: ManyGets[str, bytes]) -> dict[str, bytes | Exception]:
    results: dict[str, bytes | Exception] = {}
    for batch in many:
        for key, result in batch:
            assert key not in results, f"{key} answered twice"
            results[key] = result
    return results


def test_every_key_gets_its_own_answer_with_at_most_max_in_flight_requests_at_once(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    keys = [f"/echo/slow/{index}" for index in range(20)]
    many = _many(pool, keys, max_in_flight=4)
    results = _results(many)
    assert results == {key: key.encode() + BODY for key in keys}
    assert srv.peak_in_flight == 4 and many.peak_in_flight == 4  # the cap, reached and never passed
    assert srv.connections == 4  # and each connection carried several requests
    pool.close()


def test_the_pools_connections_idle_too_long_are_not_reused_by_the_next_run(server) -> None:
    srv, ca = server
    now = [1_000_000.0]
    pool = HttpsPool(
        "127.0.0.1", srv.server_address[1], ssl.create_default_context(cadata=ca), 8, clock=lambda: now[0]
    )
    keys = ["/a", "/b", "/c", "/d"]
    assert _results(_many(pool, keys, max_in_flight=2)) == dict.fromkeys(keys, BODY)
    assert srv.connections == 2 and len(pool._idle) == 2  # back to the pool at the end of the run
    now[0] += 60.0  # the next run, a minute later: the same two connections
    assert _results(_many(pool, keys, max_in_flight=2)) == dict.fromkeys(keys, BODY)
    assert srv.connections == 2
    now[0] += MAX_IDLE_S + 1  # a schedule slower than the network's flow timeout: fresh connections
    assert _results(_many(pool, keys, max_in_flight=2)) == dict.fromkeys(keys, BODY)
    assert srv.connections == 4
    pool.close()


def test_a_connections_idle_time_counts_from_its_last_answer_not_from_the_end_of_the_run(server) -> None:
    """A connection that finished early in a long run has been idle since then: the pool must not count
    its age from when the run handed it back."""
    srv, ca = server
    now = [1_000_000.0]
    pool = HttpsPool(
        "127.0.0.1", srv.server_address[1], ssl.create_default_context(cadata=ca), 8, clock=lambda: now[0]
    )

    def read(path: str, answer: Answer) -> bytes:
        if "slow" in path:
            now[0] += 200.0  # this answer came 200 s after /a's (a slow node, a large requestTimeout)
        return _body(path, answer)

    results = _results(_many(pool, ["/a", "/slow"], max_in_flight=2, read=read))
    assert set(results) == {"/a", "/slow"} and srv.connections == 2
    now[0] += 150.0  # the next run: /a's connection idle 350 s, /slow's 150 s
    assert _results(_many(pool, ["/c", "/d"], max_in_flight=2)) == dict.fromkeys(["/c", "/d"], BODY)
    assert srv.connections == 3  # /slow's reused, /a's closed and replaced
    pool.close()


def test_connections_come_from_the_pool_and_go_back_to_it(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    first = pool.get("/", {}, 5.0)
    assert first.read(1 << 20) == BODY
    first.close()  # now one idle connection in the pool
    connections = srv.connections
    assert _results(_many(pool, ["/a", "/b", "/c"], max_in_flight=1)) == dict.fromkeys(
        ["/a", "/b", "/c"], BODY
    )
    assert srv.connections == connections  # the pool's idle connection carried all three
    answer = pool.get("/", {}, 5.0)  # blocking again on the same connection
    assert answer.read(1 << 20) == BODY
    answer.close()
    assert srv.connections == connections
    pool.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_by_a_fresh_one(server) -> None:
    srv, ca = server
    srv.close_after_answer = True  # as an idle timeout does, without "Connection: close"
    pool = _pool(srv, ca)
    answer = pool.get("/", {}, 5.0)
    answer.read(1 << 20)
    answer.close()
    time.sleep(0.2)  # the server has closed it; the pool still holds it as idle
    keys = [f"/k{index}" for index in range(5)]
    assert _results(_many(pool, keys, max_in_flight=2)) == dict.fromkeys(keys, BODY)
    assert srv.requests == 6  # each key asked once: the stale connections cost no failure
    pool.close()


def test_a_stalled_answer_times_out_without_holding_up_the_others(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    started = time.monotonic()
    results = _results(_many(pool, ["/stall", "/echo/a", "/echo/b"], max_in_flight=3, timeout_s=0.3))
    assert time.monotonic() - started < 0.9
    error = results.pop("/stall")
    assert isinstance(error, TransportError) and error.reason == "timeout"
    assert str(error) == "GET /stall: timed out after 0.3s"
    assert results == {"/echo/a": b"/echo/a" + BODY, "/echo/b": b"/echo/b" + BODY}
    pool.close()


def test_keys_not_answered_by_the_deadline_get_no_result_and_the_rest_are_not_started(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    started = time.monotonic()
    results = _results(_many(pool, ["/stall"] * 6, max_in_flight=2, deadline_s=0.4))
    assert time.monotonic() - started < 0.8
    assert results == {}
    assert srv.requests == 2
    pool.close()


def test_a_certificate_from_another_ca_fails_every_key_and_sends_nothing(server) -> None:
    srv, _ = server
    pool = _pool(srv, generate()[0])
    results = _results(_many(pool, ["/a", "/b"]))
    assert set(results) == {"/a", "/b"}
    for error in results.values():
        assert isinstance(error, TransportError) and error.reason == "tls"
        assert "TLS verification failed" in str(error)
    assert srv.requests == 0
    pool.close()


def test_a_closed_port_is_a_connection_failure_for_every_key() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pool = HttpsPool("127.0.0.1", port, ssl.create_default_context(cadata=generate()[0]), 4)
    results = _results(_many(pool, ["/a", "/b", "/c"], max_in_flight=2))
    assert set(results) == {"/a", "/b", "/c"}
    for error in results.values():
        assert isinstance(error, TransportError) and error.reason == "connection"
        assert "could not connect" in str(error)


def test_again_sends_the_request_once_more_with_fresh_headers(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    tokens = iter(["one", "two"])
    rejected: list[str] = []

    def request(path: str) -> tuple[str, dict[str, str]]:
        return path, {"Authorization": f"Bearer {next(tokens)}"}

    def read(path: str, answer: Answer) -> bytes:
        if not rejected:
            rejected.append(path)
            raise Again
        return _body(path, answer)

    assert _results(_many(pool, ["/a"], request=request, read=read)) == {"/a": BODY}
    assert srv.authorizations == ["Bearer one", "Bearer two"]
    pool.close()


def test_a_request_sent_again_too_often_fails(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)

    def read(path: str, answer: Answer) -> bytes:
        raise Again

    results = _results(_many(pool, ["/a"], read=read, max_attempts=3))
    error = results["/a"]
    assert isinstance(error, TransportError) and "retried too often" in str(error)
    assert srv.requests == 3
    pool.close()


def test_a_readers_exception_is_its_keys_result_and_a_read_answer_keeps_its_connection(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    results = _results(_many(pool, ["/missing", "/echo/x"], max_in_flight=1))
    assert isinstance(results["/missing"], LookupError) and "HTTP 404" in str(results["/missing"])
    assert results["/echo/x"] == b"/echo/x" + BODY
    assert srv.connections == 1
    pool.close()


def test_a_reader_that_stops_before_the_end_does_not_leave_its_connection_for_the_next(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)

    def read(path: str, answer: Answer) -> bytes:
        if path == "/first":
            raise LookupError("refused without reading the body")
        return _body(path, answer)

    results = _results(_many(pool, ["/first", "/echo/second"], max_in_flight=1, read=read))
    assert isinstance(results["/first"], LookupError)
    assert results["/echo/second"] == b"/echo/second" + BODY
    assert srv.connections == 2  # the unread body's connection was closed, not reused
    pool.close()


def test_a_bug_in_one_exchange_costs_that_key_only(server, monkeypatch) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    send = ManyGets._send

    def send_with_a_bug(self, exchange) -> None:
        if exchange.path == "/bad":
            raise RuntimeError("a bug")
        send(self, exchange)

    monkeypatch.setattr(ManyGets, "_send", send_with_a_bug)
    results = _results(_many(pool, ["/a", "/bad", "/b"], max_in_flight=1))
    error = results.pop("/bad")
    assert isinstance(error, TransportError) and error.reason == "unexpected"
    assert str(error) == "GET /bad: RuntimeError: a bug"
    assert results == {"/a": BODY, "/b": BODY}
    pool.close()


def test_batches_are_at_most_batch_size(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    keys = [f"/k{index}" for index in range(7)]
    batches = list(_many(pool, keys, max_in_flight=7, batch_size=2))
    assert all(1 <= len(batch) <= 2 for batch in batches)
    assert sorted(key for batch in batches for key, _ in batch) == sorted(keys)
    pool.close()


def test_stopping_early_closes_what_is_in_flight_and_returns_idle_connections(server) -> None:
    srv, ca = server
    pool = _pool(srv, ca)
    batches = iter(_many(pool, ["/a", "/stall", "/stall"], max_in_flight=3, batch_size=1))
    assert next(batches) == [("/a", BODY)]
    batches.close()  # type: ignore[attr-defined]
    assert len(pool._idle) == 1  # /a's connection; the two stalled ones were closed
    pool.close()


# -- answers as the raw server sends them ---------------------------------------------------------


def _raw_results(
    raw: RawTlsServer, keys: list[str], timeout_s: float = 5.0, **options: int
) -> dict[str, bytes | Exception]:
    pool = raw.pool()
    try:
        return _results(_many(pool, keys, timeout_s=timeout_s, **options))
    finally:
        pool.close()


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_an_answer_sent_one_byte_per_tls_record_is_read_whole(raw, framing) -> None:
    body = bytes(range(256)) * 3
    if framing == "chunked":
        whole = CHUNKED_HEAD + chunked(body, 100)
    else:
        whole = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    raw.answer([whole[index : index + 1] for index in range(len(whole))])
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
    assert _raw_results(raw, ["/one", "/two"], max_in_flight=1) == {"/one": body, "/two": b"next"}
    assert raw.connections == 1  # the answer was read to its end: its connection carried the next


@pytest.mark.parametrize(
    ("head", "result"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", "LookupError('/one: HTTP 204')"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "b''"),
    ],
)
def test_an_answer_that_is_only_a_header_section_completes_on_a_kept_connection(raw, head, result) -> None:
    """Nothing follows it and the server keeps the connection: the parse comes when nothing more does."""
    raw.answer(head)
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
    started = time.monotonic()
    results = _raw_results(raw, ["/one", "/two"], max_in_flight=1)
    assert (repr(results["/one"]), results["/two"]) == (result, b"next")
    assert time.monotonic() - started < 2.0  # not a timeout
    assert raw.connections == 1


@pytest.mark.parametrize("pause_s", [0.0, 0.2])
def test_a_header_section_sent_apart_from_its_body_is_parsed_once_when_nothing_comes_between(
    raw, monkeypatch, pause_s
) -> None:
    """Parsing is replayed over all the bytes received, so each parse of an answer costs it whole again.
    A header section often arrives just before its body: it is parsed alone only when the body is not
    there by the time the connection has nothing more (a pause), never just because it is complete."""
    parses = []
    parse = ManyGets._parse
    monkeypatch.setattr(ManyGets, "_parse", lambda self, ex, eof: parses.append(1) or parse(self, ex, eof))
    body = b"x" * 20_000
    raw.answer([CHUNKED_HEAD, chunked(body, 4096)], pause_s=pause_s)
    assert _raw_results(raw, ["/a"]) == {"/a": body}
    assert len(parses) == (2 if pause_s else 1)


@pytest.mark.parametrize(
    "answer",
    [
        CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n",  # not a chunk size
        CHUNKED_HEAD + b"5\r\nhelloXX0\r\n\r\n",  # a chunk not followed by CRLF
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",  # a header line without a colon
    ],
)
def test_a_malformed_answer_is_a_connection_failure(raw, answer) -> None:
    raw.answer(answer)
    error = _raw_results(raw, ["/a"])["/a"]
    assert isinstance(error, TransportError) and error.reason == "connection"


def test_a_connection_closed_in_the_middle_of_an_answer_fails_it_without_a_retry(raw) -> None:
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", after="close")
    error = _raw_results(raw, ["/a?name[]=x"])["/a?name[]=x"]
    assert isinstance(error, TransportError) and error.reason == "connection"
    assert str(error).startswith("GET /a: ")  # the query, the same for every node, is left out
    assert len(raw.requests) == 1


def test_a_body_read_to_the_close_is_complete_at_the_close(raw) -> None:
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", after="close")
    assert _raw_results(raw, ["/a"]) == {"/a": b"all of it"}


def test_the_timeout_bounds_a_whole_answer_not_each_wait_for_bytes(raw) -> None:
    """An answer that keeps trickling in is cut at the timeout, as a stalled one is."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    raw.answer([head, b"a", b"b", b"c", b"d", b"e"], pause_s=0.1)
    started = time.monotonic()
    error = _raw_results(raw, ["/a"], timeout_s=0.25)["/a"]
    assert time.monotonic() - started < 0.45
    assert isinstance(error, TransportError) and error.reason == "timeout"


def test_answers_are_logged_at_debug_without_header_values_or_query(raw, caplog) -> None:
    raw.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    caplog.set_level(logging.DEBUG, logger="fargate_insights.https_many")
    pool = raw.pool()

    def request(path: str) -> tuple[str, dict[str, str]]:
        return path, {"Authorization": "Bearer secret-token"}

    assert _results(_many(pool, ["/metrics?name[]=a"], request=request)) == {"/metrics?name[]=a": b"ok"}
    pool.close()
    assert "GET /metrics: HTTP 200" in caplog.text
    assert "secret-token" not in caplog.text and "name[]" not in caplog.text


def test_an_answer_past_the_readers_cap_is_refused_without_waiting_for_its_end(raw) -> None:
    """The reader sees the answer again as it grows, so its cap ends a huge answer early."""
    pieces = [CHUNKED_HEAD] + [b"1000\r\n" + b"z" * 0x1000 + b"\r\n"] * 64  # 256 KiB, and no last chunk

    def capped(path: str, answer: Answer) -> bytes:
        body = answer.read(10_001)
        if len(body) > 10_000:
            raise LookupError("too large")
        return body

    raw.answer(pieces)
    pool = raw.pool()
    started = time.monotonic()
    results = _results(_many(pool, ["/huge"], read=capped))
    pool.close()
    assert time.monotonic() - started < 2.0  # not the 5 s timeout: the end never comes
    assert isinstance(results["/huge"], LookupError)


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port whose connects hang: a listener that never accepts, its one-slot queue already full."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    filler = socket.create_connection(listener.getsockname())
    yield listener.getsockname()[1]
    filler.close()
    listener.close()


def _addresses(monkeypatch, *ports: int) -> None:
    import socket

    from fargate_insights import https_many

    answer = [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", p)) for p in ports]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: list(answer))
    monkeypatch.setattr(https_many, "CONNECT_TIMEOUT_MAX_S", 0.3)


def test_an_unreachable_address_costs_a_connect_timeout_then_the_next_address_is_tried(
    server, blackhole, monkeypatch
) -> None:
    srv, ca = server
    _addresses(monkeypatch, blackhole, srv.server_address[1])
    pool = _pool(srv, ca)
    keys = [f"/k{index}" for index in range(6)]
    started = time.monotonic()
    assert _results(_many(pool, keys, max_in_flight=4)) == dict.fromkeys(keys, BODY)
    assert 0.3 <= time.monotonic() - started < 1.5  # some waited out the connect timeout, once
    assert srv.connections == 4  # half of them started on the unreachable address, then moved on
    pool.close()


def test_when_no_address_answers_every_key_is_a_connect_timeout(server, blackhole, monkeypatch) -> None:
    srv, ca = server
    _addresses(monkeypatch, blackhole, blackhole)
    pool = _pool(srv, ca)
    started = time.monotonic()
    results = _results(_many(pool, ["/a", "/b"], max_in_flight=2))
    assert 0.5 < time.monotonic() - started < 1.5  # two addresses, 0.3 s each
    for error in results.values():
        assert isinstance(error, TransportError) and error.reason == "timeout"
        assert "could not connect" in str(error)
    pool.close()


def test_an_idle_connection_the_server_wrote_to_is_not_reused_for_the_next_key(raw) -> None:
    """Bytes that arrive on a kept connection after its answer would shift every later answer by one."""

    raw.answer([length_answer(b"payload-of-a"), length_answer(b"EXTRA")], pause_s=0.2)
    raw.answer(length_answer(b"payload-of-b"))
    raw.answer(length_answer(b"payload-of-c"))
    pool = raw.pool()
    try:
        results: dict[str, bytes | Exception] = {}
        for key in ("/node-a", "/node-b", "/node-c"):  # one at a time, as successive runs do
            results.update(_results(_many(pool, [key], max_in_flight=1)))
            time.sleep(0.4)
    finally:
        pool.close()
    assert results == {"/node-a": b"payload-of-a", "/node-b": b"payload-of-b", "/node-c": b"payload-of-c"}


@pytest.fixture
def parses(monkeypatch) -> list[int]:
    """How many times ManyGets parses what it has received (each parse replays the whole answer)."""
    from fargate_insights import https_many

    count = [0]
    original = https_many.ManyGets._parse

    def counting(self, exchange, eof):  # type: ignore[no-untyped-def]
        count[0] += 1
        return original(self, exchange, eof)

    monkeypatch.setattr(https_many.ManyGets, "_parse", counting)
    return count


@pytest.mark.parametrize("pause_s", [0.0, 0.002])
def test_chunk_data_ending_in_crlf_does_not_make_every_record_a_parse(raw, parses, pause_s) -> None:
    """Each record then ends in CRLF CRLF, like a chunked body's end: the end is known from the framing,
    so the answer is parsed for its header section and once more at its last chunk, in a burst of
    records as in a trickle."""
    records = 300
    body = (b"2\r\n\r\n\r\n",) * records + (b"0\r\n\r\n",)
    pieces: list[bytes | tuple[bytes, ...]] = [CHUNKED_HEAD]
    pieces += [body] if not pause_s else list(body)
    raw.answer(pieces, pause_s=pause_s or 0.2)
    result = _raw_results(raw, ["/a"])["/a"]
    assert result == b"\r\n" * records
    assert parses[0] <= 3


@pytest.mark.parametrize("split", [False, True], ids=["one-record", "a-record-per-byte"])
@pytest.mark.parametrize(
    "ending",
    [b"0\r\n\r\n", b"000;ext=1\r\nX-Trailer: a\r\nY: b\r\n\r\n"],
    ids=["plain", "extensions-and-trailers"],
)
def test_the_end_of_a_chunked_body_is_found_however_its_framing_is_split(raw, parses, ending, split) -> None:
    framing = b"5;x=y\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n" + ending
    body: bytes | tuple[bytes, ...] = (
        tuple(framing[i : i + 1] for i in range(len(framing))) if split else framing
    )
    raw.answer([CHUNKED_HEAD, body], pause_s=0.2)
    result = _raw_results(raw, ["/a"], timeout_s=3.0)["/a"]
    assert result == b"hello" + b"z" * 26
    assert parses[0] <= 3
