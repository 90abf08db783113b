"""Real TLS servers on loopback for the transport tests: an HTTP/1.1 server with failure modes, and a
raw one that sends exactly the bytes a test scripts."""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator

from fargate_insights.https_transport import HttpsPool
from fargate_sim.tls import generate, server_context

BODY = b"x" * 5000


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TlsServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.requests += 1
            srv.paths.append(self.path)
            srv.authorizations.append(self.headers.get("Authorization", ""))
            srv.in_flight += 1
            srv.peak_in_flight = max(srv.peak_in_flight, srv.in_flight)
        try:
            if self.path == "/stall":
                time.sleep(1.0)
            elif "slow" in self.path:
                time.sleep(0.05)
        finally:
            with srv.lock:
                srv.in_flight -= 1
        body = self.path.encode() + BODY if self.path.startswith("/echo") else BODY
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after_answer:
            # As an idle timeout does: closed without "Connection: close", after the answer.
            self.close_connection = True


class TlsServer(http.server.ThreadingHTTPServer):
    """Answers BODY; `/stall` after 1 s, paths with "slow" after 50 ms, `/echo...` prefixed with its path,
    `/missing` with 404. Counts requests, connections and the most requests it was answering at once."""

    daemon_threads = True
    connections = 0
    close_after_answer = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lock = threading.Lock()
        self.requests = 0
        self.paths: list[str] = []
        self.authorizations: list[str] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-answer is part of these tests."""

    def get_request(self) -> tuple[socket.socket, object]:
        raw, address = super().get_request()
        self.connections += 1
        return self.tls.wrap_socket(raw, server_side=True), address


class RawTlsServer:
    """Answers each request on any connection with the next scripted answer: its pieces are sent as
    separate TLS records, then the connection is kept, closed (no close_notify) or shut down cleanly."""

    def __init__(self) -> None:
        ca, chain, key = generate()
        self.ca = ca
        self._tls = server_context(chain, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.script: list[tuple[list[bytes | tuple[bytes, ...]], str, float]] = []
        self.requests: list[bytes] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def answer(
        self, data: bytes | list[bytes | tuple[bytes, ...]], after: str = "keep", pause_s: float = 0.0
    ) -> None:
        """Script the next answer; `pause_s` is slept before each piece after the first. A piece that is
        a tuple is sent as one TLS record per element, back to back."""
        self.script.append(([data] if isinstance(data, bytes) else data, after, pause_s))

    def pool(self, max_idle: int = 4) -> HttpsPool:
        return HttpsPool("127.0.0.1", self.port, ssl.create_default_context(cadata=self.ca), max_idle)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(5)
        try:
            tls = self._tls.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with tls:
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    try:
                        data = tls.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    pending += data
                request, _, pending = pending.partition(b"\r\n\r\n")
                self.requests.append(request)
                if not self.script:
                    return
                pieces, after, pause_s = self.script.pop(0)
                for index, piece in enumerate(pieces):
                    if index and pause_s:
                        time.sleep(pause_s)
                    try:
                        for part in piece if isinstance(piece, tuple) else (piece,):
                            tls.sendall(part)
                    except OSError:
                        return
                if after == "unwrap":  # close_notify first; the client closes without answering it
                    with contextlib.suppress(OSError):
                        tls.unwrap().close()
                    return
                if after == "close":
                    return


def chunked(body: bytes, size: int) -> bytes:
    chunks = [
        b"%x\r\n%b\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    ]
    return b"".join(chunks) + b"0\r\n\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


def length_answer(body: bytes) -> bytes:
    """A 200 answer framed by its Content-Length."""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose connection attempts go unanswered, as an endpoint limited to some CIDRs looks from
    outside them: a listener whose accept queue is full, so that the kernel drops every further SYN."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
        time.sleep(0.05)
        yield int(address[1])
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
