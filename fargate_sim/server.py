"""The simulated EKS API server: TLS, bearer-token auth, node list, node proxy to cAdvisor, faults."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import json
import random
import select
import socket
import ssl
import struct
import threading
import time
import uuid
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import k8s
from .auth import TokenError, verify_token
from .cadvisor import NodeMetrics
from .clock import Clock, RealClock
from .faults import NOT_METRICS_HTML, Faults, garbage_body
from .model import SimPod, generate_pods, new_uid
from .tls import generate, server_context

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The largest chunk of a chunked answer. Real chunk sizes follow the writes of the kubelet and the API
# server's proxy; small ones make a client decode several chunks an answer, as it must in a cluster.
CHUNK_BYTES = 4096
# A list body longer than this goes chunked, as the API server's (it sets no Content-Length).
LIST_CHUNKED_ABOVE = 2048
# The API server's words for a continue token whose resourceVersion etcd has compacted (apiserver's
# storage/etcd3), answered 410 Gone with reason Expired.
EXPIRED_CONTINUE_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a "
    "new list without the continue parameter, or use the continue token in this response to retrieve "
    "the remainder of the results. Continuing with the provided token results in an inconsistent list - "
    "objects that were created, modified, or deleted between the time the first chunk was returned and "
    "now may show up in the list."
)


class SimStats:
    """Thread-safe counters of what the simulator served (read them as attributes)."""

    _FIELDS = (
        "requests",
        "proxy_requests",
        "list_calls",
        "unauthorized",
        "forbidden",
        "not_found",
        "throttled",
        "expired_continues",
        "gzip_responses",
        "identity_responses",
        "filtered_responses",
        "bytes_sent",
        "faults_injected",
        "in_flight",
        "max_in_flight",
        "connections",
        "metadata_lists",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_kind: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.reset()

    def reset(self) -> None:
        """Zero every counter (handy between phases of a test)."""
        with self._lock:
            for name in self._FIELDS:
                setattr(self, name, 0)
            self.by_kind.clear()
            self.faults.clear()

    def add(self, name: str, amount: int = 1) -> int:
        """Add to a counter and return its new value."""
        with self._lock:
            value: int = getattr(self, name) + amount
            setattr(self, name, value)
            return value

    def enter_proxy(self) -> None:
        """Count a proxy request in flight (and the highest concurrency seen)."""
        with self._lock:
            self.in_flight += 1
            self.proxy_requests += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave_proxy(self) -> None:
        """A proxy request finished."""
        with self._lock:
            self.in_flight -= 1

    def kind(self, kind: str) -> None:
        """Count a request by route kind."""
        with self._lock:
            self.by_kind[kind] += 1

    def fault(self, kind: str) -> None:
        """Count an injected fault."""
        with self._lock:
            self.faults[kind] += 1
            self.faults_injected += 1

    def snapshot(self) -> dict[str, Any]:
        """A plain dict of every counter."""
        with self._lock:
            data: dict[str, Any] = {name: getattr(self, name) for name in self._FIELDS}
            data["by_kind"] = dict(self.by_kind)
            data["faults"] = dict(self.faults)
            return data

    # Typed attribute declarations for mypy (set in reset()).
    requests: int
    proxy_requests: int
    list_calls: int
    unauthorized: int
    forbidden: int
    not_found: int
    throttled: int
    expired_continues: int
    gzip_responses: int
    identity_responses: int
    filtered_responses: int
    bytes_sent: int
    faults_injected: int
    in_flight: int
    max_in_flight: int
    connections: int


def _metadata_json(node: dict[str, Any]) -> str:
    partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": node["metadata"]}
    return json.dumps(partial, separators=(",", ":"))


def _wants_metadata_only(accept: str) -> bool:
    """Whether the first media type the API server can serve is the metadata-only list, as in
    `application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json`."""
    for media_type in accept.split(","):
        kind, *raw_params = (part.strip() for part in media_type.split(";"))
        params = dict(param.partition("=")[::2] for param in raw_params)
        if kind not in ("application/json", "application/*", "*/*"):
            continue
        if "as" not in params:
            return False
        if params == {"as": "PartialObjectMetadataList", "g": "meta.k8s.io", "v": "v1"}:
            return True
    return False


@dataclasses.dataclass
class _Node:
    name: str
    labels: dict[str, str]
    pod: SimPod | None
    metrics: NodeMetrics
    json_text: str
    # The node as a PartialObjectMetadata: what a client asking for metadata only gets in a list.
    metadata_json_text: str
    attempts: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512
    sim: SimulatedCluster

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS handshake in the connection's own thread, so a slow client never blocks accept()."""
        sim = self.sim
        try:
            request.settimeout(30)
            # Like Go's net/http (the real API server): no Nagle. Headers and body leave in two writes;
            # with Nagle, the body waits for the client's delayed ACK of the headers (40 ms on Linux).
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = sim._tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        sim._track(tls, True)
        sim.stats.add("connections")
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            sim._track(tls, False)
            with contextlib.suppress(OSError):
                tls.close()

    def shutdown_request(self, request: Any) -> None:
        """The TLS socket is closed in finish_request; close the raw one too."""
        with contextlib.suppress(OSError):
            request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects are normal here; stay quiet."""


def _chunked(body: bytes) -> bytes:
    """`body` in Transfer-Encoding: chunked framing, the last chunk included."""
    parts = [
        b"%x\r\n%b\r\n" % (len(piece), piece)
        for piece in (body[i : i + CHUNK_BYTES] for i in range(0, len(body), CHUNK_BYTES))
    ]
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


class _Reset(Exception):
    """Raised to abandon a connection after a deliberate reset."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver"
    sys_version = ""
    timeout = 120
    server: _Server

    # ---- plumbing ---------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        """Silent: never log requests (they carry tokens)."""

    def handle(self) -> None:
        """Serve requests until the client closes; a deliberate reset ends the connection abruptly."""
        try:
            super().handle()
        except _Reset:
            self.close_connection = True

    def finish(self) -> None:
        """Flush, tolerating a connection that is already gone."""
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    @property
    def sim(self) -> SimulatedCluster:
        return self.server.sim

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        chunked: bool = False,
    ) -> None:
        """One write for the headers, one for the body; `chunked` frames the body in chunks of at most
        CHUNK_BYTES instead of sending its length (`bytes_sent` counts the body without framing)."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(_chunked(body) if chunked else body)
        self.sim.stats.add("bytes_sent", len(body))

    def _json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj, separators=(",", ":")).encode(), headers=headers)

    def _status(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        self._json(code, k8s.status(code, reason, message, details))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # ---- entry points -----------------------------------------------------------------------
    def do_GET(self) -> None:
        """All GET routes."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """SelfSubjectAccessReview."""
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        sim = self.sim
        stats = sim.stats
        stats.add("requests")
        body = self._read_body() if method == "POST" else b""
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if path in ("/healthz", "/livez", "/readyz"):
            stats.kind("health")
            self._send(200, b"ok", "text/plain; charset=utf-8")
            return
        if sim._take_unauthorized():
            stats.add("unauthorized")
            self._json(401, k8s.UNAUTHORIZED)
            return
        try:
            identity = verify_token(
                self.headers.get("Authorization"), sim.cluster_name, sim.clock.now(), sim.credentials
            )
        except TokenError:
            stats.add("unauthorized")
            self._json(401, k8s.UNAUTHORIZED)
            return
        user = identity.username
        segments = [unquote(s) for s in path.split("/") if s]
        if method == "GET" and path == "/version":
            stats.kind("version")
            self._json(200, sim.version_info())
        elif method == "GET" and segments == ["api", "v1", "nodes"]:
            stats.kind("list_nodes")
            self._list_nodes(query, user)
        elif method == "GET" and len(segments) == 4 and segments[:3] == ["api", "v1", "nodes"]:
            stats.kind("get_node")
            self._get_node(segments[3], user)
        elif (
            method == "GET"
            and len(segments) >= 6
            and segments[:3] == ["api", "v1", "nodes"]
            and segments[4] == "proxy"
        ):
            stats.kind("proxy")
            names = parse_qs(parts.query, keep_blank_values=True).get("name[]")
            self._proxy(segments[3], "/".join(segments[5:]), user, names)
        elif method == "GET" and segments == ["api", "v1", "pods"]:
            stats.kind("list_pods")
            self._list_pods(query, user)
        elif method == "POST" and path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
            stats.kind("ssar")
            self._ssar(body)
        else:
            stats.kind("other")
            stats.add("not_found")
            self._status(404, "NotFound", "the server could not find the requested resource", {})

    # ---- routes -----------------------------------------------------------------------------
    def _forbidden(self, verb: str, resource: str, name: str | None, user: str) -> None:
        self.sim.stats.add("forbidden")
        group, _, sub = resource.partition("/")
        target = f'{group} "{name}"' if name else group
        message = (
            f'{target} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "" at the cluster scope'
        )
        details: dict[str, Any] = {"kind": group}
        if name:
            details["name"] = name
        del sub
        self._status(403, "Forbidden", message, details)

    def _list_nodes(self, query: dict[str, str], user: str) -> None:
        sim = self.sim
        calls = sim.stats.add("list_calls")
        if calls <= sim.faults.list_throttle:
            sim.stats.add("throttled")
            # What the API server's max-in-flight and priority-and-fairness filters answer: Go's
            # http.Error, plain text and no Status object (unlike a 429 from a handler).
            self._send(
                429,
                b"Too many requests, please try again later.\n",
                "text/plain; charset=utf-8",
                headers={"Retry-After": str(sim.faults.retry_after_s), "X-Content-Type-Options": "nosniff"},
            )
            return
        if not sim.allowed("list", "nodes"):
            self._forbidden("list", "nodes", None, user)
            return
        try:
            requirements = k8s.parse_selector(query.get("labelSelector", ""))
        except k8s.SelectorError as error:
            self._status(400, "BadRequest", f"unable to parse requirement: {error}")
            return
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            self._status(400, "BadRequest", "limit must be an integer")
            return
        if sim.max_page_size:
            limit = min(limit, sim.max_page_size) if limit > 0 else sim.max_page_size
        start_after = ""
        with sim._lock:
            rv = sim._resource_version
            nodes = sorted(sim._nodes.values(), key=lambda n: n.name)
        if query.get("continue"):
            try:
                rv, start_after = k8s.decode_continue(query["continue"])
            except (ValueError, KeyError, TypeError):
                self._status(400, "BadRequest", "continue key is not valid: illegal base64 data")
                return
            if sim.stats.expired_continues < sim.faults.expire_continue:
                sim.stats.add("expired_continues")
                self._status(410, "Expired", EXPIRED_CONTINUE_MESSAGE)
                return
        selected = [n for n in nodes if n.name > start_after and k8s.matches(requirements, n.labels)]
        page = selected[:limit] if limit > 0 else selected
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit > 0 and len(selected) > limit:
            metadata["continue"] = k8s.encode_continue(rv, page[-1].name)
            metadata["remainingItemCount"] = len(selected) - limit
        if _wants_metadata_only(self.headers.get("Accept") or ""):
            sim.stats.add("metadata_lists")
            kind, api_version, items = (
                "PartialObjectMetadataList",
                "meta.k8s.io/v1",
                [n.metadata_json_text for n in page],
            )
        else:
            kind, api_version, items = "NodeList", "v1", [n.json_text for n in page]
        head = json.dumps(
            {"kind": kind, "apiVersion": api_version, "metadata": metadata}, separators=(",", ":")
        )
        body = head[:-1] + ',"items":[' + ",".join(items) + "]}"
        # As Go's net/http sends what a handler writes in one go past its buffer: chunked.
        self._send(200, body.encode(), chunked=len(body) > LIST_CHUNKED_ABOVE)

    def _get_node(self, name: str, user: str) -> None:
        sim = self.sim
        if not sim.allowed("get", "nodes"):
            self._forbidden("get", "nodes", name, user)
            return
        node = sim._nodes.get(name)
        if node is None:
            sim.stats.add("not_found")
            self._status(404, "NotFound", f'nodes "{name}" not found', {"name": name, "kind": "nodes"})
            return
        self._send(200, node.json_text.replace("{", '{"kind":"Node","apiVersion":"v1",', 1).encode())

    def _list_pods(self, query: dict[str, str], user: str) -> None:
        sim = self.sim
        if not sim.allowed("list", "pods"):
            self._forbidden("list", "pods", None, user)
            return
        field = query.get("fieldSelector", "")
        wanted = field.split("=", 1)[1].lstrip("=") if field.startswith("spec.nodeName") else None
        with sim._lock:
            pods = [n.pod for n in sim._nodes.values() if n.pod is not None]
            rv = sim._resource_version
        items = [sim.pod_object(p) for p in pods if wanted is None or p.node_name == wanted]
        self._json(
            200,
            {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}, "items": items},
        )

    def _ssar(self, body: bytes) -> None:
        try:
            review = json.loads(body or b"{}")
            attrs = review.get("spec", {}).get("resourceAttributes", {}) or {}
        except (ValueError, AttributeError):
            self._status(400, "BadRequest", "the body of the request was in an unknown format")
            return
        resource = attrs.get("resource", "")
        if attrs.get("subresource"):
            resource += "/" + attrs["subresource"]
        allowed = attrs.get("group", "") in ("", None) and self.sim.allowed(attrs.get("verb", ""), resource)
        result: dict[str, Any] = {"allowed": allowed}
        if allowed:
            result["reason"] = (
                'RBAC: allowed by ClusterRoleBinding "fargate-insights" of ClusterRole "fargate-insights"'
            )
        self._json(
            201,
            {
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": review.get("spec", {}),
                "status": result,
            },
        )

    def _proxy(self, name: str, subpath: str, user: str, names: list[str] | None) -> None:
        sim = self.sim
        stats = sim.stats
        if not sim.allowed("get", "nodes/proxy"):
            self._forbidden("get", "nodes/proxy", name, user)
            return
        node = sim._nodes.get(name)
        if node is None:
            stats.add("not_found")
            self._status(404, "NotFound", f'nodes "{name}" not found', {"name": name, "kind": "nodes"})
            return
        stats.enter_proxy()
        try:
            delay = sim._latency()
            if delay > 0 and sim._stopping.wait(delay):
                raise _Reset
            if subpath != "metrics/cadvisor":
                stats.add("not_found")
                self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
                return
            with sim._lock:
                node.attempts += 1
                attempt = node.attempts
            fault = sim.faults.pick(name, attempt, sim.seed)
            if fault is not None:
                stats.fault(fault)
                self._fault(fault, node)
                return
            self._metrics(node, frozenset(names) if names and sim.name_filter else None)
        finally:
            stats.leave_proxy()

    def _accepts_gzip(self) -> bool:
        for part in (self.headers.get("Accept-Encoding") or "").split(","):
            token, _, params = part.strip().partition(";")
            if token.strip().lower() in ("gzip", "*"):
                q = params.strip()
                return not (q.startswith("q=") and float(q[2:] or 0) == 0)
        return False

    def _metrics(self, node: _Node, names: frozenset[str] | None) -> None:
        now = self.sim.clock.now()
        if names is not None:
            self.sim.stats.add("filtered_responses")
        if self._accepts_gzip():
            _, compressed = node.metrics.render_gzip(now, names=names)
            self.sim.stats.add("gzip_responses")
            # As a kubelet's answer reaches the client through the API server's proxy: Go's net/http
            # writes a body over 2 KB with no length (promhttp gzips as it writes), so it comes chunked.
            self._send(
                200,
                compressed,
                METRICS_CONTENT_TYPE,
                {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
                chunked=True,
            )
        else:
            raw = node.metrics.render(now, names=names)
            self.sim.stats.add("identity_responses")
            self._send(200, raw, METRICS_CONTENT_TYPE)

    def _fault(self, kind: str, node: _Node) -> None:
        sim = self.sim
        name = node.name
        ip = node.pod.ip if node.pod else "10.0.0.1"
        if kind == "http500":
            self._status(
                500,
                "InternalError",
                'an error on the server ("unknown") has prevented the request from succeeding',
                {"causes": [{"reason": "UnexpectedServerResponse", "message": "unknown"}]},
            )
        elif kind == "http502":
            self._send(502, b"Bad Gateway\n", "text/plain; charset=utf-8")
        elif kind == "http503":
            self._status(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {ip}:10250: connect: connection refused",
            )
        elif kind == "http403":
            self._forbidden("get", "nodes/proxy", name, "system:anonymous")
        elif kind == "http404":
            self._status(404, "NotFound", f'nodes "{name}" not found', {"name": name, "kind": "nodes"})
        elif kind == "timeout":
            self._hang(sim.faults.timeout_s)
        elif kind == "reset":
            raw = node.metrics.render(sim.clock.now())
            self.send_response(200)
            self.send_header("Content-Type", METRICS_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw[: len(raw) // 3])
            self.wfile.flush()
            self._abort()
        elif kind == "truncated_gzip":
            _, compressed = node.metrics.render_gzip(sim.clock.now())
            cut = compressed[: max(20, len(compressed) * 3 // 5)]
            self._send(200, cut, METRICS_CONTENT_TYPE, {"Content-Encoding": "gzip"})
        elif kind == "cut_chunked":
            self._cut_chunked(node)
        elif kind == "not_metrics":
            self._send(200, NOT_METRICS_HTML, "text/html; charset=utf-8")
        elif kind == "garbage":
            raw = garbage_body(node.metrics.render(sim.clock.now()), f"{sim.seed}:{name}:{node.attempts}")
            if self._accepts_gzip():
                self._send(200, gzip.compress(raw, 1), METRICS_CONTENT_TYPE, {"Content-Encoding": "gzip"})
            else:
                self._send(200, raw, METRICS_CONTENT_TYPE)
        elif kind == "huge":
            self._huge(node)
        else:  # pragma: no cover - Faults validates kinds
            raise ValueError(kind)

    def _cut_chunked(self, node: Any) -> None:
        """A kubelet that breaks off mid-answer, as the API server relays it: Go's reverse proxy aborts
        the handler, so the client gets the chunks so far, no last chunk, and the connection closed."""
        _, compressed = node.metrics.render_gzip(self.sim.clock.now())
        pieces = [compressed[i : i + CHUNK_BYTES] for i in range(0, len(compressed), CHUNK_BYTES)]
        self.send_response(200)
        self.send_header("Content-Type", METRICS_CONTENT_TYPE)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces[: max(1, len(pieces) // 2)]:
            self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
        self.wfile.flush()
        self.close_connection = True

    def _abort(self) -> None:
        """Close the TCP connection with a RST, mid-response."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw = (
                socket.socket(fileno=self.connection.detach())
                if isinstance(self.connection, ssl.SSLSocket)
                else self.connection
            )
            raw.close()
        except OSError:
            pass
        raise _Reset

    def _hang(self, seconds: float) -> None:
        """Say nothing for ``seconds`` (or until the client leaves or the server stops), then 504."""
        deadline = time.monotonic() + seconds
        sock = self.connection
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self.sim._stopping.is_set():
                raise _Reset
            readable, _, _ = select.select([sock], [], [], min(0.2, remaining))
            if readable:
                try:
                    if not sock.recv(1):
                        raise _Reset
                except (OSError, ssl.SSLError) as error:
                    raise _Reset from error
        self.close_connection = True
        self._status(504, "Timeout", "Timeout: request did not complete within the allotted timeout")

    def _huge(self, node: _Node) -> None:
        """Stream a body far larger than real (valid-looking text), chunked, gzip if accepted."""
        sim = self.sim
        use_gzip = self._accepts_gzip()
        self.send_response(200)
        self.send_header("Content-Type", METRICS_CONTENT_TYPE)
        self.send_header("Transfer-Encoding", "chunked")
        if use_gzip:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if use_gzip else None

        def emit(data: bytes) -> None:
            out = compressor.compress(data) if compressor else data
            if out:
                self.wfile.write(f"{len(out):x}\r\n".encode() + out + b"\r\n")
                sim.stats.add("bytes_sent", len(out))

        raw = node.metrics.render(sim.clock.now())
        emit(raw)
        emit(b"# HELP container_sim_padding_bytes Padding series of an unusually large payload.\n")
        emit(b"# TYPE container_sim_padding_bytes gauge\n")
        sent = len(raw)
        index = 0
        while sent < sim.faults.huge_bytes and not sim._stopping.is_set():
            block = "".join(
                f'container_sim_padding_bytes{{container="",id="/kubepods/pad/{i:08d}",image="",name="",'
                f'namespace="",pod=""}} {i} 1700000000000\n'
                for i in range(index, index + 8192)
            ).encode()
            index += 8192
            emit(block)
            sent += len(block)
        if compressor:
            tail = compressor.flush()
            if tail:
                self.wfile.write(f"{len(tail):x}\r\n".encode() + tail + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class SimulatedCluster:
    """An EKS cluster on Fargate, served over HTTPS on 127.0.0.1 (see the package docs for the API)."""

    def __init__(
        self,
        cluster_name: str = "demo",
        pods: int | list[SimPod] = 40,
        seed: int = 7,
        clock: Clock | None = None,
        latency_s: float | tuple[float, float] = 0.0,
        max_page_size: int | None = None,
        credentials: tuple[str, str] | None = None,
        permissions: dict[str, bool] | None = None,
        faults: Faults | None = None,
        ec2_nodes: int = 2,
        region: str = "us-west-2",
        housekeeping_s: float = 1.0,
        port: int = 0,
        name_filter: bool = False,
    ) -> None:
        self.cluster_name = cluster_name
        # Kubelets built with client_golang >= 1.24 answer `?name[]=<family>` with those families only;
        # older ones ignore the parameter and send everything.
        self.name_filter = name_filter
        self.seed = seed
        self.clock: Any = clock or RealClock()
        self.latency_s = latency_s
        self.max_page_size = max_page_size
        self.credentials = credentials
        self.permissions = dict(permissions or {})
        self.faults = faults or Faults()
        self.region = region
        self.housekeeping_s = housekeeping_s
        self.stats = SimStats()
        self._port = port
        self._rng = random.Random(f"{seed}:cluster")
        self._latency_rng = random.Random(f"{seed}:latency")
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._connections: set[ssl.SSLSocket] = set()
        self._unauthorized_left = self.faults.unauthorized_first
        self._resource_version = 1000
        self._created = self.clock.now()
        self._boot = self._created - 4 * 86400
        initial = generate_pods(pods, seed, self._created, region) if isinstance(pods, int) else list(pods)
        self._nodes: dict[str, _Node] = {}
        for pod in initial:
            self._add(pod)
        for index in range(ec2_nodes):
            self._add_ec2(index)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.ca_pem = ""
        self.ca_data = ""
        self._tls: ssl.SSLContext

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> SimulatedCluster:
        """Generate the CA, listen on 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            return self
        ca_pem, cert_pem, key_pem = generate()
        self.ca_pem = ca_pem
        self.ca_data = base64.b64encode(ca_pem.encode()).decode()
        self._tls = server_context(cert_pem, key_pem)
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.sim = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop every open connection (hanging requests end too)."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SimulatedCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The listening port (after start())."""
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """``https://127.0.0.1:PORT``, like DescribeCluster's endpoint."""
        return f"https://127.0.0.1:{self.port}"

    # ---- cluster state ----------------------------------------------------------------------
    @property
    def pods(self) -> list[SimPod]:
        """Current pods, in node-name order."""
        with self._lock:
            return [n.pod for n in sorted(self._nodes.values(), key=lambda n: n.name) if n.pod is not None]

    @property
    def fargate_nodes(self) -> list[str]:
        """Names of the Fargate nodes."""
        return [p.node_name for p in self.pods]

    @property
    def node_names(self) -> list[str]:
        """Every node name, Fargate and EC2."""
        with self._lock:
            return sorted(self._nodes)

    def _bump(self) -> int:
        self._resource_version += 1
        return self._resource_version

    def _add(self, pod: SimPod) -> None:
        with self._lock:
            if pod.node_name in self._nodes:
                raise ValueError(f"node {pod.node_name} already exists")
            rv = self._bump()
            node = k8s.fargate_node(pod, self.region, rv, min(pod.start_time, self.clock.now()) - 40)
            metrics = NodeMetrics(pod.node_name, pod, pod.start_time - 40, self.seed, self.housekeeping_s)
            self._nodes[pod.node_name] = _Node(
                pod.node_name,
                node["metadata"]["labels"],
                pod,
                metrics,
                json.dumps(node, separators=(",", ":")),
                _metadata_json(node),
            )

    def _add_ec2(self, index: int) -> None:
        with self._lock:
            rv = self._bump()
            node = k8s.ec2_node(index, self.region, rv, self._boot)
            name = node["metadata"]["name"]
            metrics = NodeMetrics(name, None, self._boot, self.seed, self.housekeeping_s, 8 * 1024**3, 2)
            self._nodes[name] = _Node(
                name,
                node["metadata"]["labels"],
                None,
                metrics,
                json.dumps(node, separators=(",", ":")),
                _metadata_json(node),
            )

    def _find(self, pod_name: str) -> _Node:
        for node in self._nodes.values():
            if node.pod is not None and node.pod.name == pod_name:
                return node
        raise KeyError(f"no pod named {pod_name!r}")

    def add_pod(self, pod: SimPod) -> None:
        """Add a Fargate pod (and its node)."""
        self._add(pod)

    def remove_pod(self, name: str) -> SimPod:
        """Remove a pod and its node; returns the removed pod."""
        with self._lock:
            node = self._find(name)
            del self._nodes[node.name]
            self._bump()
            assert node.pod is not None
            return node.pod

    def recreate_pod(self, name: str) -> SimPod:
        """Same name, namespace and node; new uid and container ids; counters restart from 0 now."""
        with self._lock:
            old = self.remove_pod(name)
            pod = dataclasses.replace(
                old,
                uid=new_uid(self._rng),
                start_time=self.clock.now(),
                container_ids={},
                sandbox_id="",
                images=dict(old.images),
                rx_bytes_per_s=dict(old.rx_bytes_per_s),
                tx_bytes_per_s=dict(old.tx_bytes_per_s),
                containers=list(old.containers),
            )
            self._add(pod)
            return pod

    def set_node_fault(self, node_name: str, kind: str | None) -> None:
        """Make every proxy request to this node fail with ``kind`` (None clears it)."""
        if kind is None:
            self.faults.node_faults.pop(node_name, None)
        else:
            Faults(kinds=(kind,))  # validates the kind
            self.faults.node_faults[node_name] = kind

    def allowed(self, verb: str, resource: str) -> bool:
        """RBAC as configured: everything is allowed unless ``permissions`` says False."""
        return self.permissions.get(f"{verb} {resource}", True)

    def version_info(self) -> dict[str, str]:
        """What ``GET /version`` returns."""
        return {
            "major": "1",
            "minor": "30+",
            "gitVersion": k8s.SERVER_GIT_VERSION,
            "gitCommit": "7f9249a9b3d2a1c7e4f0c1d2b3a4e5f60718293a",
            "gitTreeState": "clean",
            "buildDate": "2024-10-28T19:50:19Z",
            "goVersion": "go1.22.8",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def pod_object(self, pod: SimPod) -> dict[str, Any]:
        """A Pod object (enough of it for collectors that read capacity and restarts)."""
        cpu = (pod.cpu_limit_millicores or pod.cpu_request_millicores or 250.0) / 1000
        vcpu = 0.25 if cpu <= 0.25 else 0.5 if cpu <= 0.5 else 1 if cpu <= 1 else 2 if cpu <= 2 else 4
        mem_gb = max(0.5, ((pod.memory_limit_bytes or pod.memory_request_bytes or 0) / 1024**3) + 0.25)
        containers = []
        for name in pod.containers:
            resources: dict[str, dict[str, str]] = {}
            if pod.cpu_limit_millicores is not None or pod.memory_limit_bytes is not None:
                limits = {}
                if pod.cpu_limit_millicores is not None:
                    limits["cpu"] = f"{int(pod.cpu_limit_millicores)}m"
                if pod.memory_limit_bytes is not None:
                    limits["memory"] = f"{pod.memory_limit_bytes // 1024**2}Mi"
                resources["limits"] = limits
            containers.append({"name": name, "image": pod.images.get(name, ""), "resources": resources})
        started = k8s.rfc3339(pod.start_time)
        return {
            "metadata": {
                "name": pod.name,
                "namespace": pod.namespace,
                "uid": pod.uid,
                "creationTimestamp": started,
                "labels": {"app": pod.name.rsplit("-", 2)[0], "eks.amazonaws.com/fargate-profile": "default"},
                "annotations": {
                    "CapacityProvisioned": f"{vcpu:g}vCPU {mem_gb:g}GB",
                    "Logging": "LoggingDisabled: LOGGING_CONFIGMAP_NOT_FOUND",
                },
            },
            "spec": {
                "nodeName": pod.node_name,
                "schedulerName": "fargate-scheduler",
                "containers": containers,
            },
            "status": {
                "phase": "Running",
                "qosClass": pod.qos_class,
                "podIP": pod.ip,
                "hostIP": pod.ip,
                "startTime": started,
                "containerStatuses": [
                    {
                        "name": name,
                        "ready": True,
                        "restartCount": 0,
                        "image": pod.images.get(name, ""),
                        "containerID": f"containerd://{pod.container_ids[name]}",
                        "state": {"running": {"startedAt": started}},
                    }
                    for name in pod.containers
                ],
            },
        }

    # ---- internals used by the handler ------------------------------------------------------
    def _latency(self) -> float:
        if isinstance(self.latency_s, tuple):
            low, high = self.latency_s
            with self._lock:
                return self._latency_rng.uniform(low, high)
        return float(self.latency_s)

    def _take_unauthorized(self) -> bool:
        with self._lock:
            if self._unauthorized_left > 0:
                self._unauthorized_left -= 1
                return True
            return False

    def _track(self, conn: ssl.SSLSocket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
