"""Keep-alive HTTPS GETs to one host: a minimal HTTP/1.1 client over a verified TLS socket.

The collector makes thousands of small GETs a minute to a single host, without redirects, retries or
proxies, so the CPU each request costs adds up: urllib3's pool cost 0.58 ms a request against
http.client's 0.34 ms, and profiled at 3,000 nodes, http.client's own work then dominated the request
(header validation in `putheader`, `parse_headers` through the `email` feed parser, `_read_chunked` in
Python). This client does only what the collector needs: the whole request sent with one `sendall`,
answers received up to 64 KiB at a time, the header block split with bytes operations and chunks
decoded by slicing, idle connections reused, one retry on a fresh connection when the server closed an
idle one, timeouts, and TLS always verified with the caller's context. Its parser also reads the answers
of `https_many`, which makes many GETs at once on one thread. On loopback, an 11 KB chunked answer on a
reused connection costs about a third of http.client's CPU: 0.06-0.11 against 0.18-0.31 ms (thread
time, the two clients measured alternately on a noisy 2-core VM; TLS reads and writes are half of the rest).

Not supported, because the API server does not use them: pipelining, request bodies, obs-folded or
bare-LF header lines, and 101 protocol switches (answers with those are errors, not guesses).
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol, TypeVar, overload

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

CONNECT_TIMEOUT_MAX_S: Final = 5.0
# An idle connection kept longer than this is closed rather than reused. NAT gateways and the EKS public
# endpoint's load balancer forget a TCP flow idle for 350 s (by default); what a request on it then gets
# depends on what is in between: an RST at best (retried at once), or nothing until its timeout. An
# execution environment frozen between runs sends no keepalive. Measured on the wall clock, since the
# monotonic clock need not count the time an environment spends frozen; an age below zero (the clock
# stepped back) is not trusted either.
MAX_IDLE_S: Final = 300.0
MAX_HEAD_BYTES: Final = 64 * 1024  # the status line and headers, interim (1xx) answers included
_RECV_BYTES: Final = 64 * 1024
MAX_CHUNK_LINE: Final = 4096  # a chunk-size line, extensions included
_HEX: Final = b"0123456789abcdefABCDEF"
# Framing states of an answer's body.
_LENGTH: Final = 0  # Content-Length: `_left` bytes still to come
_CHUNKED: Final = 1  # `_left` > 2: data bytes + CRLF to come; 2: the CRLF; 0: a size line; -1: trailers
_TO_CLOSE: Final = 2  # neither: the body ends when the server closes the connection
_DONE: Final = 3


class TransportError(Exception):
    """A request that got no HTTP answer; `reason` is timeout, tls or connection."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ServerClosed(Exception):
    """The server closed the connection before sending a byte of the answer."""


# Errors that mean "the server closed this idle keep-alive connection": safe to retry a GET once.
STALE_CONNECTION_ERRORS: Final = (ServerClosed, BrokenPipeError, ConnectionResetError, ssl.SSLEOFError)


class Source(Protocol):
    """Where an answer's bytes come from: a connection, or bytes already received (`https_many`)."""

    def recv(self, amount: int, /) -> bytes: ...

    def settimeout(self, value: float | None, /) -> None: ...

    def close(self) -> None: ...


class Owner(Protocol):
    """What takes a connection back once its answer has been read to the end."""

    def put(self, connection: Any, /) -> None: ...


def _broken(message: str) -> TransportError:
    return TransportError("connection", message)


class Headers(Mapping[str, str]):
    """An answer's header fields by case-insensitive name; repeated fields joined with ", "."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields  # lowercased names

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    # Mapping's own get() goes through __getitem__ and a KeyError for every absent field: three
    # lookups an answer, one of them usually absent.
    @overload
    def get(self, name: str, /) -> str | None: ...

    @overload
    def get(self, name: str, /, default: str | _T) -> str | _T: ...

    def get(self, name: str, /, default: object = None) -> object:
        return self._fields.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


class Answer:
    """An HTTP answer whose body is still to be read; `close()` it exactly once (`contextlib.closing`)."""

    __slots__ = ("_buf", "_deadline", "_keep_alive", "_left", "_mode", "_pool", "_sock", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: Headers,
        sock: Source,
        pool: Owner,
        buf: bytes,
        mode: int,
        left: int,
        keep_alive: bool,
        deadline: float | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self._sock: Source | None = sock
        self._pool = pool
        self._buf = buf  # received bytes of the body not yet consumed (raw chunked framing included)
        self._mode = mode
        self._left = left
        self._keep_alive = keep_alive
        self._deadline = deadline  # time.monotonic() by which the whole request must be done, if any

    @property
    def reusable(self) -> bool:
        """Whether the answer has been read to its end and its connection may carry another."""
        return self._mode == _DONE and self._keep_alive and not self._buf

    @property
    def chunked(self) -> bool:
        """Whether the body is still being read in chunked framing."""
        return self._mode == _CHUNKED

    @property
    def buffered(self) -> int:
        """Bytes received past the header section and not yet consumed."""
        return len(self._buf)

    def bytes_to_come(self) -> int | None:
        """How many body bytes are still to be received (past those already buffered), when the
        framing says (a Content-Length); None when only the body itself will tell."""
        if self._mode == _LENGTH:
            return self._left - len(self._buf)
        if self._mode == _DONE:
            return 0
        return None

    def read(self, amount: int) -> bytes:
        """Up to `amount` bytes of the body (fewer only at its end)."""
        if self._mode == _DONE or amount <= 0:
            return b""
        try:
            if self._mode == _CHUNKED:
                return self._read_chunked(amount)
            return self._read_plain(amount)
        except TransportError:
            self._keep_alive = False
            raise
        except TimeoutError as err:
            self._keep_alive = False
            raise TransportError("timeout", "timed out reading the answer") from err
        except OSError as err:
            self._keep_alive = False
            raise _broken(f"connection broken while reading: {err!r}") from err

    def close(self) -> None:
        """Reuse the connection only when its answer was read to the end; unread bytes would be
        handed to the next request on it."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self.reusable:
            self._pool.put(sock)
        else:
            sock.close()

    def _recv(self) -> bytes:
        if self._sock is None:
            raise _broken("read after close")
        return _recv_before(self._sock, self._deadline)

    def _read_plain(self, amount: int) -> bytes:
        """Content-Length or read-to-close bodies."""
        want = min(amount, self._left) if self._mode == _LENGTH else amount
        buf = self._buf
        have = len(buf)
        parts = [buf] if have else []
        while have < want:
            data = self._recv()
            if not data:
                if self._mode == _TO_CLOSE:
                    self._mode = _DONE
                    self._keep_alive = False
                    want = have
                    break
                raise _broken(f"the connection closed {self._left - have} bytes short of the Content-Length")
            parts.append(data)
            have += len(data)
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        if have > want:
            self._buf = body[want:]  # past the Content-Length only if the server sent junk: not reused
            body = body[:want]
        else:
            self._buf = b""
        if self._mode == _LENGTH:
            self._left -= want
            if not self._left:
                self._mode = _DONE
        return body

    def _read_chunked(self, amount: int) -> bytes:
        """Decode chunks from the buffer, receiving more only when a chunk or its framing is incomplete."""
        out: list[bytes] = []
        have = 0
        buf = self._buf
        pos = 0
        left = self._left
        while have < amount:
            if left > 2:  # chunk data
                n = min(left - 2, len(buf) - pos, amount - have)
                if n > 0:
                    out.append(buf[pos : pos + n])
                    pos += n
                    left -= n
                    have += n
                    continue
            elif left == 2:  # the CRLF after a chunk's data
                if len(buf) - pos >= 2:
                    if buf[pos : pos + 2] != b"\r\n":
                        raise _broken("a chunk is not followed by CRLF")
                    pos += 2
                    left = 0
                    continue
            elif left == 0:  # chunk-size [; extensions] CRLF
                eol = buf.find(b"\r\n", pos)
                if eol >= 0:
                    size = chunk_size(buf[pos:eol])
                    pos = eol + 2
                    left = size + 2 if size else -1
                    continue
                if len(buf) - pos > MAX_CHUNK_LINE:
                    raise _broken("a chunk-size line is too long")
            else:  # trailer fields, ended by an empty line; skipped
                if buf.startswith(b"\r\n", pos):
                    pos += 2
                    self._mode = _DONE
                    break
                end = buf.find(b"\r\n\r\n", pos)
                if end >= 0:
                    pos = end + 4
                    self._mode = _DONE
                    break
                if len(buf) - pos > MAX_HEAD_BYTES:
                    raise _broken("the trailer section exceeds 64 KiB")
            data = self._recv()
            if not data:
                raise _broken("the connection closed in the middle of a chunked answer")
            buf = buf[pos:] + data if pos < len(buf) else data
            pos = 0
        self._buf = buf[pos:] if pos < len(buf) else b""
        self._left = left
        if len(out) == 1:
            return out[0]
        return b"".join(out)


def _recv_before(sock: Source, deadline: float | None) -> bytes:
    """The next bytes, waiting no later than `deadline`: a socket timeout alone bounds each read, and a
    server that trickles its answer would never trip it."""
    if deadline is not None:
        sock.settimeout(_remaining(deadline))
    return sock.recv(_RECV_BYTES)


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the request's time ran out")
    return remaining


def idle_connection_usable(sock: ssl.SSLSocket) -> bool:
    """Whether an idle keep-alive connection can carry another request: not when the server sent bytes
    on it since its last answer (they would be read as the next answer) or closed it.

    A TLS message without data (a TLS 1.3 session ticket or key update) leaves it usable; reading it
    is how to tell. Leaves the socket non-blocking: the caller sets the mode it needs.
    """
    if sock.pending():
        return False
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return True
    sock.setblocking(False)
    try:
        sock.recv(1)
    except ssl.SSLWantReadError:
        return True  # only TLS's own messages had arrived
    except (ssl.SSLError, OSError):
        return False
    return False  # data, or the end of the connection


def chunk_size(line: bytes) -> int:
    """The size a chunk-size line (without its CRLF) gives; TransportError when it is not one."""
    size = line.partition(b";")[0].strip(b" \t")
    if not size or len(size) > 15 or size.strip(_HEX):
        raise _broken(f"invalid chunk size {line[:40]!r}")
    return int(size, 16)


class HttpsPool:
    """Idle connections to one host, shared by threads; at most `max_idle` are kept."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        max_idle: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self._port = port
        self._context = context
        self._max_idle = max_idle
        self._clock = clock
        self._idle: list[tuple[ssl.SSLSocket, float]] = []  # (connection, when it became idle)
        self._lock = threading.Lock()
        authority = f"[{host}]" if ":" in host else host
        if port != 443:
            authority = f"{authority}:{port}"
        self._host_line = f"Host: {authority}\r\n"

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def context(self) -> ssl.SSLContext:
        return self._context

    def get(self, path: str, headers: dict[str, str], timeout_s: float) -> Answer:
        """Send a GET and read its status and headers."""
        request = self.encode_request(path, headers)
        deadline = time.monotonic() + timeout_s  # for the whole request, from connecting to the last byte
        for attempt in (1, 2):
            # The retry after a stale idle connection takes a fresh one: idle connections age together,
            # so the next idle one is likely stale too, and two in a row would fail the request.
            sock = self.take_idle() if attempt == 1 else None
            reused = sock is not None
            try:
                if sock is None:
                    sock = self._connect(deadline)
                sock.settimeout(_remaining(deadline))
                sock.sendall(request)
                answer = self.read_answer(sock, deadline=deadline)
            except STALE_CONNECTION_ERRORS as err:
                if sock is not None:
                    sock.close()
                if reused:  # only ever on the first attempt
                    continue  # the server closed it while idle: a fresh connection, once
                raise TransportError("connection", f"GET {path}: connection closed: {err!r}") from err
            except TransportError as err:
                if sock is not None:
                    sock.close()
                raise TransportError(err.reason, f"GET {path}: {err}") from err
            except TimeoutError as err:
                if sock is not None:
                    sock.close()
                raise TransportError("timeout", f"GET {path}: timed out after {timeout_s:.1f}s") from err
            except ssl.SSLCertVerificationError as err:
                raise TransportError("tls", f"GET {path}: TLS verification failed ({err})") from err
            except OSError as err:
                what = "could not connect" if sock is None else "connection broken"
                if sock is not None:
                    sock.close()
                raise TransportError("connection", f"GET {path}: {what}: {err!r}") from err
            logger.debug("GET %s: HTTP %d", path, answer.status)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def now(self) -> float:
        """The pool's clock, for `since`: when a connection became idle."""
        return self._clock()

    def fresh(self, since: float) -> bool:
        """Whether a connection idle since `since` may still be reused (see MAX_IDLE_S)."""
        return 0.0 <= self._clock() - since <= MAX_IDLE_S

    def put(self, connection: ssl.SSLSocket, since: float | None = None) -> None:
        """Keep an idle connection; `since` is when it became idle, if before now."""
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append((connection, self._clock() if since is None else since))
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection, _ in idle:
            connection.close()

    def encode_request(self, path: str, headers: dict[str, str]) -> bytes:
        """The whole request; a CR or LF anywhere but at the line ends would inject headers."""
        text = (
            f"GET {path} HTTP/1.1\r\n{self._host_line}"
            + "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
            + "\r\n"
        )
        lines = len(headers) + 3
        if text.count("\r") != lines or text.count("\n") != lines:
            raise ValueError("a CR or LF in a request header or path")
        if " " in path or not path.isascii() or not path.isprintable():
            raise ValueError("a space, control or non-ASCII character in the request path")
        return text.encode("latin-1")

    def take_idle(self) -> ssl.SSLSocket | None:
        """An idle connection to reuse (the caller sets its blocking mode and timeout), or None; idle
        connections the server wrote to or closed are dropped (`idle_connection_usable`), and so are
        those idle for longer than MAX_IDLE_S, which the network may have forgotten without a word."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                sock, since = self._idle.pop()
            if self.fresh(since) and idle_connection_usable(sock):
                return sock
            sock.close()

    def _connect(self, deadline: float) -> ssl.SSLSocket:
        raw = socket.create_connection(
            (self._host, self._port), min(CONNECT_TIMEOUT_MAX_S, _remaining(deadline))
        )
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.settimeout(_remaining(deadline))  # the handshake, within what is left of the request's time
            return self._context.wrap_socket(raw, server_hostname=self._host)  # handshake and verify
        except BaseException:
            raw.close()
            raise

    def read_answer(self, sock: Source, owner: Owner | None = None, deadline: float | None = None) -> Answer:
        """Read the status line and headers (skipping interim 1xx answers) and decide the framing.

        `owner` takes the connection back when the answer has been read (this pool by default);
        `deadline` (time.monotonic()) bounds every read of the answer, its body's included.
        """
        buf = _recv_before(sock, deadline)
        if not buf:
            raise ServerClosed("the server closed the connection without answering")
        start = 0  # where the current header block begins in buf
        search = 0
        while True:
            end = buf.find(b"\r\n\r\n", search)
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    raise _broken("the answer's header section exceeds 64 KiB")
                if buf.find(b"\n\n", start) >= 0:  # never in CRLF headers: waiting would end in a timeout
                    raise _broken("the answer's header lines end in bare LFs")
                data = _recv_before(sock, deadline)
                if not data:
                    raise _broken("the connection closed in the middle of the answer's headers")
                search = max(start, len(buf) - 3)
                buf += data
                continue
            if end + 4 > MAX_HEAD_BYTES:
                raise _broken("the answer's header section exceeds 64 KiB")
            version, status, fields = _parse_head(buf[start:end])
            start = search = end + 4
            if status >= 200:
                break
            if status == 101:
                raise _broken("unexpected 101 Switching Protocols")
            # 100 Continue, 103 Early Hints, ...: the answer follows.
        rest = buf[start:]
        connection = fields.get("connection")
        tokens = {token.strip() for token in connection.lower().split(",")} if connection else set()
        keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
        transfer = fields.get("transfer-encoding")
        length = fields.get("content-length")
        if status in (204, 304):
            mode, left = _DONE, 0
        elif transfer is not None:
            if transfer.rpartition(",")[2].strip().lower() == "chunked":
                mode, left = _CHUNKED, 0
            else:
                mode, left = _TO_CLOSE, 0
            if length is not None:  # both: a smuggling risk; the length is ignored, the connection not reused
                keep_alive = False
        elif length is not None:
            left = _content_length(length)
            mode = _LENGTH if left else _DONE
        else:
            mode, left = _TO_CLOSE, 0
        if mode == _TO_CLOSE:
            keep_alive = False
        return Answer(status, Headers(fields), sock, owner or self, rest, mode, left, keep_alive, deadline)


def _parse_head(block: bytes) -> tuple[str, int, dict[str, str]]:
    """Status line and fields of one header block (without its final CRLF CRLF)."""
    text = block.decode("latin-1")
    lines = text.split("\r\n")
    if text.count("\n") != len(lines) - 1 or text.count("\r") != len(lines) - 1:
        raise _broken("a bare CR or LF in the answer's headers")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if (
        version not in ("HTTP/1.1", "HTTP/1.0")
        or len(code) != 3
        or not code.isdigit()
        or not code.isascii()
        or code < "100"
        or rest[3:4] not in ("", " ")
    ):
        raise _broken(f"malformed status line {lines[0][:80]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name[-1] in " \t" or line[0] in " \t":
            raise _broken(f"malformed header line {name[:40]!r}")
        key = name.lower()
        value = value.strip(" \t")
        previous = fields.get(key)
        fields[key] = value if previous is None else f"{previous}, {value}"
    return version, int(code), fields


def _content_length(value: str) -> int:
    """A Content-Length, repeated ("5, 5") only with the same value."""
    first, _, others = value.partition(",")
    first = first.strip()
    if not first.isdigit() or not first.isascii() or len(first) > 18:
        raise _broken(f"invalid Content-Length {value[:40]!r}")
    if others and any(other.strip() != first for other in others.split(",")):
        raise _broken(f"conflicting Content-Length values {value[:80]!r}")
    return int(first)
