"""Many GETs to one host at once, on one thread: non-blocking TLS sockets and a selector.

Why not a thread per request: with 64 scrape threads blocked on sockets, the collector spent 8-36% more
CPU a node than with one thread serving the same sockets and handing its caller the finished answers in
batches (5,000 nodes, measured alternately; the README has the runs). Every wake-up of a thread costs a
GIL hand-off, and a thread that resumes finds the interpreter's caches cold; one thread that takes many
finished answers through each step in a row keeps them warm.

Answers are read by the same code as `HttpsPool`'s blocking GETs: the answer is parsed again from its
first byte over what has been received (`_Replay`), and the parse either completes or stops for more.
Answers are a few TLS records, so this costs little and leaves one parser to trust. It is not retried on
every arrival: only once the Content-Length is there, once a chunked answer's last chunk is in (its
framing followed as it arrives, `_ChunkedEnd`), or once what has been received has doubled (which
bounds the work on a huge answer). A server that never stops sending is cut at the request's timeout.
"""

from __future__ import annotations

import errno
import logging
import operator
import selectors
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, Generic, TypeVar

from .https_transport import (
    CONNECT_TIMEOUT_MAX_S,
    MAX_CHUNK_LINE,
    MAX_HEAD_BYTES,
    STALE_CONNECTION_ERRORS,
    Answer,
    HttpsPool,
    ServerClosed,
    TransportError,
    chunk_size,
    idle_connection_usable,
)

logger = logging.getLogger(__name__)

K = TypeVar("K")
T = TypeVar("T")

_RECV_BYTES: Final = 64 * 1024
# Do not start a request with less time than this left before the deadline.
_MIN_START_S: Final = 0.05
# An exchange's states.
_CONNECTING: Final = 0
_HANDSHAKE: Final = 1
_SENDING: Final = 2
_RECEIVING: Final = 3
_IN_PROGRESS: Final = frozenset({errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN})
# What a non-blocking TLS or socket call raises when it must wait (`_wait` says for what).
_WOULD_BLOCK: Final = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)
_TIMER: Final = operator.attrgetter("timer")


class Again(Exception):
    """Raised by a reader to send the request again (`request` is asked for fresh headers)."""


class _NeedMore(Exception):
    """The bytes received so far end before the answer does."""


class _Replay:
    """A socket stand-in serving the bytes received so far; past them, EOF or `_NeedMore`."""

    __slots__ = ("_data", "_eof", "_pos")

    def __init__(self, data: bytes, eof: bool) -> None:
        self._data = data
        self._pos = 0
        self._eof = eof

    def recv(self, amount: int) -> bytes:
        if self._pos < len(self._data):
            chunk = self._data[self._pos : self._pos + amount]
            self._pos += len(chunk)
            return chunk
        if self._eof:
            return b""
        raise _NeedMore

    def settimeout(self, value: float | None) -> None:
        pass  # bytes already received: nothing to wait for

    def close(self) -> None:
        pass

    @property
    def position(self) -> int:
        return self._pos

    @property
    def exhausted(self) -> bool:
        return self._pos == len(self._data)


class _Discard:
    """The owner of a replayed answer: its stand-in socket goes nowhere when the answer is closed."""

    def put(self, connection: object) -> None:
        pass


_DISCARD: Final = _Discard()


class _Exchange(Generic[K]):
    """One key's GET: its connection, what is left to send and what has been received."""

    __slots__ = (
        "address",
        "attempt",
        "chunks",
        "events",
        "expires",
        "key",
        "out",
        "parse_at",
        "parsed",
        "path",
        "received",
        "reused",
        "size",
        "sock",
        "state",
        "timer",
        "tries",
    )

    def __init__(self, key: K, expires: float) -> None:
        self.key = key
        self.expires = expires
        self.attempt = 0
        self.address = 0  # which of the host's addresses the connection is trying
        self.tries = 0  # how many it has tried
        # When something must happen next: the request's end or, while connecting, the next address.
        self.timer = expires
        self.sock: socket.socket | None = None
        self.events = 0  # what the selector waits for on `sock`; 0: not registered
        self.state = _CONNECTING
        self.reused = False
        self.path = ""
        self.out = b""
        self.received: list[bytes] = []
        self.size = 0  # bytes received in this attempt
        # Parse again once `size` reaches this (or at the end of a chunked answer); 0: the header section
        # has not been parsed, so parse when nothing more comes for now.
        self.parse_at = 0
        self.parsed = 0  # the bytes the last parse saw
        # Follows a chunked body's framing once the header section has been parsed, to parse again
        # exactly when the last chunk is in; None before, for other framings, or once it was wrong.
        self.chunks: _ChunkedEnd | None = None


class ManyGets(Generic[K, T]):
    """GET one path per key, at most `max_in_flight` at once; iterate for batches of (key, result).

    `request(key)` gives the path and headers (asked again for each attempt); `read(key, answer)` turns a
    complete answer into the key's result, or raises: `Again` to send the request once more, any other
    exception to make it the key's result. Connection failures are `TransportError` results. A key not
    answered by `deadline` gets no result: the iteration ends at the deadline, and keys not started by
    then are never requested. `timeout_s` bounds each request as a whole, from its connection (when it
    needs a new one) to its answer's last byte. `peak_in_flight` is the most requests that were in
    flight at once. Iterate once: the iteration owns the sockets and closes them when it ends.
    """

    def __init__(
        self,
        pool: HttpsPool,
        keys: Iterable[K],
        request: Callable[[K], tuple[str, dict[str, str]]],
        read: Callable[[K, Answer], T],
        max_in_flight: int,
        timeout_s: float,
        deadline: float,
        max_attempts: int = 3,
        batch_size: int = 32,
        batch_wait_s: float = 0.025,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._pool = pool
        self._keys = iter(keys)
        self._request = request
        self._read = read
        self._max_in_flight = max_in_flight
        self._timeout_s = timeout_s
        self._deadline = deadline
        self._max_attempts = max_attempts
        self._batch_size = batch_size
        self._batch_wait_s = batch_wait_s
        self._batch_started = 0.0
        self._selector = selectors.DefaultSelector()
        self._active: set[_Exchange[K]] = set()
        # This run's keep-alive connections (non-blocking), with when each became idle.
        self._idle: list[tuple[ssl.SSLSocket, float]] = []
        self._addresses: list[tuple[Any, ...]] = []
        self._connections_opened = 0
        self._done: list[tuple[K, T | Exception]] = []
        self.peak_in_flight = 0

    def __iter__(self) -> Iterator[list[tuple[K, T | Exception]]]:
        try:
            more_keys = True
            while True:
                now = time.monotonic()
                if now >= self._deadline:
                    if self._done:
                        yield self._take_done()
                    return
                while (
                    more_keys
                    and len(self._active) < self._max_in_flight
                    and self._deadline - now > _MIN_START_S
                ):
                    try:
                        key = next(self._keys)
                    except StopIteration:
                        more_keys = False
                        break
                    exchange = _Exchange(key, min(now + self._timeout_s, self._deadline))
                    self._active.add(exchange)
                    self._guarded(self._begin, exchange)
                self.peak_in_flight = max(self.peak_in_flight, len(self._active))
                if self._active:
                    earliest = min(map(_TIMER, self._active))
                    wait = earliest - now
                    if self._done:
                        wait = min(wait, self._batch_started + self._batch_wait_s - now)
                    ready = self._selector.select(max(wait, 0.0))
                    for selected, _ in ready:
                        if len(self._done) >= self._batch_size:
                            break  # the rest stay ready for the next round
                        self._guarded(self._step, selected.data)
                    now = time.monotonic()
                    # Only when a timer was due: one that a step above set in the past is seen next round.
                    due = earliest <= now < self._deadline
                    for exchange in [e for e in self._active if e.timer <= now] if due else []:
                        if exchange.expires > now:  # the connection, not the request, ran out of time
                            self._guarded(self._connect_timed_out, exchange)
                        else:
                            timeout = TransportError("timeout", f"timed out after {self._timeout_s:.1f}s")
                            self._fail(exchange, timeout)
                if self._done and (
                    len(self._done) >= self._batch_size
                    or not self._active
                    or now - self._batch_started >= self._batch_wait_s
                ):
                    yield self._take_done()
                elif (
                    not self._done
                    and not self._active
                    and (not more_keys or self._deadline - time.monotonic() <= _MIN_START_S)
                ):
                    return  # all answered, or the rest cannot start before the deadline
        finally:
            for exchange in list(self._active):
                self._close(exchange)
            self._selector.close()
            for connection, since in self._idle:
                # its next blocking GET sets its timeout, and so blocking mode
                self._pool.put(connection, since)
            self._idle.clear()

    def _take_done(self) -> list[tuple[K, T | Exception]]:
        done, self._done = self._done, []
        return done

    # -- an exchange's steps ----------------------------------------------------------------------

    def _begin(self, exchange: _Exchange[K]) -> None:
        """A new attempt: fresh headers, then an idle connection (first attempt only) or a new one."""
        exchange.attempt += 1
        exchange.tries = 0
        exchange.received = []
        exchange.size = exchange.parse_at = exchange.parsed = 0
        exchange.chunks = None
        try:
            exchange.path, headers = self._request(exchange.key)
            exchange.out = self._pool.encode_request(exchange.path, headers)
        except Exception as err:
            self._finish(exchange, err)
            return
        connection = self._take_idle() if exchange.attempt == 1 else None
        if connection is not None:
            connection.setblocking(False)
            exchange.sock, exchange.reused, exchange.state = connection, True, _SENDING
            exchange.timer = exchange.expires
            self._send(exchange)
        else:
            exchange.reused = False
            self._connect(exchange)

    def _take_idle(self) -> ssl.SSLSocket | None:
        """One of this run's idle connections, else the pool's; either is checked before reuse."""
        while self._idle:
            connection, since = self._idle.pop()
            if self._pool.fresh(since) and idle_connection_usable(connection):
                return connection
            connection.close()
        return self._pool.take_idle()

    def _guarded(self, step: Callable[[_Exchange[K]], None], exchange: _Exchange[K]) -> None:
        try:
            step(exchange)
        except Exception as err:  # a bug must cost its own key, not the others'
            if exchange in self._active:
                self._fail(exchange, TransportError("unexpected", f"{type(err).__name__}: {err}"))

    def _step(self, exchange: _Exchange[K]) -> None:
        if exchange.state == _RECEIVING:
            self._receive(exchange)
        elif exchange.state == _SENDING:
            self._send(exchange)
        elif exchange.state == _HANDSHAKE:
            self._handshake(exchange)
        else:
            self._connected(exchange)

    def _connect(self, exchange: _Exchange[K]) -> None:
        if not self._addresses:
            try:
                self._addresses = socket.getaddrinfo(
                    self._pool.host, self._pool.port, type=socket.SOCK_STREAM
                )
            except OSError as err:
                self._fail(
                    exchange, TransportError("connection", f"could not resolve {self._pool.host}: {err}")
                )
                return
        # Connections start at successive addresses, so that one unreachable address costs a share of
        # them, and each tries the next after CONNECT_TIMEOUT_MAX_S, as socket.create_connection() does.
        if exchange.tries == 0:
            exchange.address = self._connections_opened % len(self._addresses)
            self._connections_opened += 1
        family, kind, proto, _, address = self._addresses[exchange.address]
        exchange.timer = min(time.monotonic() + CONNECT_TIMEOUT_MAX_S, exchange.expires)
        raw = socket.socket(family, kind, proto)
        try:
            raw.setblocking(False)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = raw.connect_ex(address)
        except OSError as err:
            raw.close()
            self._fail(exchange, TransportError("connection", f"could not connect: {err!r}"))
            return
        exchange.sock, exchange.state = raw, _CONNECTING
        if code and code not in _IN_PROGRESS:
            self._connect_failed(exchange, code)
            return
        self._want(exchange, selectors.EVENT_WRITE)

    def _connected(self, exchange: _Exchange[K]) -> None:
        raw = exchange.sock
        assert raw is not None
        code = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._connect_failed(exchange, code)
            return
        self._unwatch(exchange)
        try:
            exchange.sock = self._pool.context.wrap_socket(
                raw, server_hostname=self._pool.host, do_handshake_on_connect=False
            )
        except (ssl.SSLError, OSError) as err:
            raw.close()
            exchange.sock = None
            self._fail(exchange, TransportError("connection", f"TLS setup failed: {err!r}"))
            return
        exchange.state = _HANDSHAKE
        self._handshake(exchange)

    def _connect_timed_out(self, exchange: _Exchange[K]) -> None:
        self._connect_failed(exchange, errno.ETIMEDOUT)

    def _connect_failed(self, exchange: _Exchange[K], code: int) -> None:
        self._close(exchange)
        exchange.tries += 1
        if exchange.tries < len(self._addresses):
            exchange.address = (exchange.address + 1) % len(self._addresses)
            self._connect(exchange)  # the host's next address, as socket.create_connection() does
            return
        error = OSError(code, errno.errorcode.get(code, "?"))
        reason = "timeout" if code == errno.ETIMEDOUT else "connection"
        self._fail(exchange, TransportError(reason, f"could not connect: {error!r}"))

    def _handshake(self, exchange: _Exchange[K]) -> None:
        sock = exchange.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except _WOULD_BLOCK as err:
            self._wait(exchange, err)
            return
        except ssl.SSLCertVerificationError as err:
            self._fail(exchange, TransportError("tls", f"TLS verification failed ({err})"))
            return
        except (ssl.SSLError, OSError) as err:
            self._fail(exchange, TransportError("connection", f"TLS handshake failed: {err!r}"))
            return
        exchange.state, exchange.timer = _SENDING, exchange.expires
        self._send(exchange)

    def _send(self, exchange: _Exchange[K]) -> None:
        sock = exchange.sock
        assert sock is not None
        try:
            while exchange.out:
                # SSL_write takes all or nothing; after a want-write it is retried with the same bytes.
                sent = sock.send(exchange.out)
                exchange.out = exchange.out[sent:]
        except _WOULD_BLOCK as err:
            self._wait(exchange, err)
            return
        except STALE_CONNECTION_ERRORS as err:
            self._stale_or_broken(exchange, err)
            return
        except OSError as err:
            self._fail(exchange, TransportError("connection", f"connection broken: {err!r}"))
            return
        exchange.state = _RECEIVING
        self._want(exchange, selectors.EVENT_READ)

    def _receive(self, exchange: _Exchange[K]) -> None:
        """Read what has arrived, parsing whenever the answer may be complete, until the answer is done
        or the connection has nothing more for now. The parse also bounds what is read: the reader
        refuses an answer past its cap, so a huge or endless answer ends as soon as it has shown that.

        Before the header section has been parsed, the bytes are parsed only once the connection has
        nothing more for now (or past MAX_HEAD_BYTES): a header section often arrives alone, just
        before the body, and parsing it then would mean parsing the whole answer twice."""
        sock = exchange.sock
        assert sock is not None
        while True:
            try:
                data = sock.recv(_RECV_BYTES)
            except _WOULD_BLOCK as err:
                # Nothing more for now: if the header section has not been parsed, the answer may be whole.
                unparsed = exchange.parse_at == 0 and exchange.size > exchange.parsed
                if unparsed and not self._parse(exchange, eof=False):
                    return  # done, failed, or sent again on another connection
                self._wait(exchange, err)
                return
            except STALE_CONNECTION_ERRORS as err:
                self._stale_or_broken(exchange, err)
                return
            except OSError as err:
                self._fail(
                    exchange, TransportError("connection", f"connection broken while reading: {err!r}")
                )
                return
            if data:
                if time.monotonic() >= exchange.expires:  # a server that never stops sending
                    timeout = TransportError("timeout", f"timed out after {self._timeout_s:.1f}s")
                    self._fail(exchange, timeout)
                    return
                exchange.received.append(data)
                exchange.size += len(data)
                ended = exchange.chunks is not None and exchange.chunks.feed(data)
                if exchange.parse_at == 0:  # the header section not parsed yet
                    if exchange.size <= MAX_HEAD_BYTES:
                        continue
                elif exchange.size < exchange.parse_at and not ended:
                    continue
            if not self._parse(exchange, eof=not data):
                return  # done, failed, or sent again on another connection

    def _parse(self, exchange: _Exchange[K], eof: bool) -> bool:
        """Parse what has been received; True when the answer needs more bytes."""
        received = exchange.received
        data = received[0] if len(received) == 1 else b"".join(received)
        exchange.parsed = len(data)
        exchange.received = [data] if data else []
        replay = _Replay(data, eof)
        answer = None
        expected = None
        chunked = False
        body_start = 0
        try:
            answer = self._pool.read_answer(replay, _DISCARD)
            chunked, body_start = answer.chunked, replay.position - answer.buffered
            to_come = answer.bytes_to_come()
            expected = None if to_come is None else replay.position + to_come
            result = self._read(exchange.key, answer)
        except _NeedMore:
            if answer is None:
                exchange.parse_at = 0  # the header section is not all there: at the next bytes
            else:
                # Unknown length: parse again once the bytes have doubled (and 64 KiB more), which bounds
                # the work on a long answer and lets the reader's cap end an endless one; the end of a
                # chunked body is caught as it comes, by following its framing from here.
                exchange.parse_at = expected if expected is not None else 2 * len(data) + _RECV_BYTES
                if exchange.chunks is not None:
                    if exchange.chunks.ended:  # wrong once (it should not be): the doubling from now on
                        exchange.chunks.trusted = False
                elif chunked:
                    exchange.chunks = _ChunkedEnd()
                    exchange.chunks.feed(data[body_start:])
            return True
        except ServerClosed as err:
            self._stale_or_broken(exchange, err)
            return False
        except Again:
            self._close(exchange)
            if exchange.attempt >= self._max_attempts:
                self._fail(exchange, TransportError("connection", "the request was retried too often"))
            else:
                self._begin(exchange)
            return False
        except TransportError as err:
            self._fail(exchange, err)
            return False
        except Exception as err:  # the reader's verdict on a complete answer: the key's result
            self._log_answer(exchange, answer)
            self._finish(
                exchange, err, reuse=answer is not None and answer.reusable and replay.exhausted and not eof
            )
            return False
        self._log_answer(exchange, answer)
        self._finish(exchange, result, reuse=answer.reusable and replay.exhausted and not eof)
        return False

    @staticmethod
    def _log_answer(exchange: _Exchange[K], answer: Answer | None) -> None:
        if logger.isEnabledFor(logging.DEBUG):  # no work for a line not logged, once a node
            logger.debug("GET %s: HTTP %d", _shown(exchange.path), answer.status if answer else 0)

    # -- endings --------------------------------------------------------------------------------

    def _stale_or_broken(self, exchange: _Exchange[K], err: BaseException) -> None:
        """A reused idle connection the server had closed gets one fresh connection; else an error."""
        if exchange.reused and not exchange.received and exchange.attempt < self._max_attempts:
            self._close(exchange)
            self._begin(exchange)
            return
        self._fail(exchange, TransportError("connection", f"connection closed: {err!r}"))

    def _fail(self, exchange: _Exchange[K], err: TransportError) -> None:
        path = _shown(exchange.path) or "?"
        self._finish(exchange, TransportError(err.reason, f"GET {path}: {err}"))

    def _finish(self, exchange: _Exchange[K], result: T | Exception, reuse: bool = False) -> None:
        if reuse and isinstance(exchange.sock, ssl.SSLSocket):
            self._unwatch(exchange)
            self._idle.append((exchange.sock, self._pool.now()))
            exchange.sock = None
        else:
            self._close(exchange)
        self._active.discard(exchange)
        if not self._done:
            self._batch_started = time.monotonic()
        self._done.append((exchange.key, result))

    # -- the selector ---------------------------------------------------------------------------

    def _wait(self, exchange: _Exchange[K], err: OSError) -> None:
        """Wait for what a non-blocking call said it needs: TLS may have to read before it can write."""
        reading = isinstance(err, ssl.SSLWantReadError)
        self._want(exchange, selectors.EVENT_READ if reading else selectors.EVENT_WRITE)

    def _want(self, exchange: _Exchange[K], events: int) -> None:
        if exchange.events == events:
            return
        if exchange.events:
            self._selector.modify(exchange.sock, events, exchange)  # type: ignore[arg-type]
        else:
            self._selector.register(exchange.sock, events, exchange)  # type: ignore[arg-type]
        exchange.events = events

    def _unwatch(self, exchange: _Exchange[K]) -> None:
        if exchange.events:
            self._selector.unregister(exchange.sock)  # type: ignore[arg-type]
            exchange.events = 0

    def _close(self, exchange: _Exchange[K]) -> None:
        if exchange.sock is not None:
            self._unwatch(exchange)
            exchange.sock.close()
            exchange.sock = None


class _ChunkedEnd:
    """Follows a chunked body's framing as its bytes arrive, to tell when the last chunk and its trailers
    are in: then, and not at every arrival, the answer is parsed again. Each byte is looked at once, so
    a body of many chunks costs no more than one of a few; bytes that merely end like a chunked body
    (chunk data ending in CRLF) do not fool it. It only triggers the parse, which checks everything:
    on a size line it cannot read it says "ended" and lets the parse give the verdict."""

    __slots__ = ("_left", "_line", "ended", "trusted")

    def __init__(self) -> None:
        self._left = 0  # > 0: chunk data and its CRLF still to come; 0: in a size line; -1: in trailers
        self._line = b""  # the start of a size or trailer line split across arrivals
        self.ended = False
        self.trusted = True

    def feed(self, data: bytes) -> bool:
        """Take the next bytes of the body; True once the body has ended."""
        if self.ended or not self.trusted:
            return self.ended and self.trusted
        buf = self._line + data if self._line else data
        pos, size = 0, len(buf)
        while pos < size:
            if self._left > 0:
                step = min(self._left, size - pos)
                pos += step
                self._left -= step
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            if self._left == 0:
                try:
                    chunk = chunk_size(buf[pos:eol])  # the parser's own reading of a size line
                except TransportError:
                    self.ended = True  # not a size: the parse will say so
                    return True
                self._left = chunk + 2 if chunk else -1
            elif eol == pos:  # the empty line after the last chunk and any trailers
                self.ended = True
                return True
            pos = eol + 2
        self._line = buf[pos:]
        if len(self._line) > MAX_CHUNK_LINE + MAX_HEAD_BYTES:
            self.ended = True  # past what the parser takes: let it refuse
        return self.ended


def _shown(path: str) -> str:
    """A path for logs and errors, without its query: the same for every key, and long."""
    return path.partition("?")[0]
