"""The two Kubernetes API calls the collector makes: list Fargate nodes, read the nodes' cAdvisor metrics.

A thin adapter over one pool of keep-alive TLS connections: the listing's GETs one at a time, the
scrapes many at once on the caller's thread (`https_many`). The kubernetes client's generated models would
deserialize every node into objects and its import alone costs about a quarter of a second on every
cold start, so the hot path speaks the API's JSON and text directly (the kubernetes client serves the
preflight, where that cost does not matter). TLS is always verified against the cluster's CA.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

from .cadvisor import WANTED_FAMILIES
from .gzip_body import InflateError, inflate
from .https_many import Again, ManyGets
from .https_transport import Answer, HttpsPool, TransportError
from .names import FARGATE_LABEL, FARGATE_LABEL_VALUE

logger = logging.getLogger(__name__)

FARGATE_SELECTOR: Final = f"{FARGATE_LABEL}={FARGATE_LABEL_VALUE}"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
LIST_PAGE_SIZE: Final = 500
# A page over the body cap is asked again with half the limit, down to this: a Fargate node's metadata is
# about 3 KB (two thirds of it managedFields), but annotations added by other tools can make it much more,
# and a listing that fails fails the whole run.
MIN_LIST_PAGE_SIZE: Final = 8
# Nodes are listed as metadata only (names and labels are all the collector reads): a fraction of the
# bytes the API server serializes and the function parses for full Node objects. A server that cannot
# serve it falls back to the full NodeList, which reads the same way.
NODE_LIST_ACCEPT: Final = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json"
# A Fargate node's payload is 100-200 KB; anything past this is not a real kubelet answer. The cap
# bounds memory too: up to max_in_flight bodies (and their inflated copies) can be held at once.
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
# Waits between throttled LISTs: the server's Retry-After, but never less than this, doubling with each
# 429 in a row (up to 8 s), so that `Retry-After: 0` is not a tight loop against a busy API server.
MIN_RETRY_WAIT_S: Final = 0.5
MAX_RETRY_BACKOFF_S: Final = 8.0
# The reason of a node the API server no longer knows: its pod ended between the list and the scrape.
NODE_GONE: Final = "node_gone"
# Kubelets built with client_golang >= 1.24 (Kubernetes took it on 2026-07-21) answer with only the
# families named by `name[]`: about a tenth of the bytes to send, inflate and scan. Older kubelets ignore
# the parameter and send every family; the extraction reads both the same way.
CADVISOR_QUERY: Final = urlencode([("name[]", family) for family in WANTED_FAMILIES])
# What the kubelet answers /metrics/cadvisor with (Prometheus text; OpenMetrics when asked for it).
METRICS_MEDIA_TYPES: Final = frozenset({"text/plain", "application/openmetrics-text"})


class KubeApiError(Exception):
    """A failed API call, with a short machine-readable reason for counting failures by kind."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class _ContinueExpired(Exception):
    """A list page's continue token had expired (410): the list must be taken again from its start."""


@dataclass(frozen=True, slots=True)
class FargateNode:
    name: str
    hostname: str


class KubeClient:
    """Bearer-token client for one API server; safe to share between threads."""

    def __init__(
        self,
        endpoint: str,
        ca_pem: str,
        token: Callable[[], str],
        invalidate_token: Callable[[], None],
        max_in_flight: int = 64,
        request_timeout_s: float = 10.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "https" or parts.hostname is None:
            raise ValueError(f"endpoint must be an https URL, got {endpoint!r}")
        context = ssl.create_default_context(cadata=ca_pem)  # CERT_REQUIRED and hostname checks on
        self._base_path = parts.path.rstrip("/")
        self._pool = HttpsPool(parts.hostname, parts.port or 443, context, max_idle=max_in_flight)
        self._token = token
        self._invalidate_token = invalidate_token
        self._timeout_s = request_timeout_s
        self._max_body = max_body_bytes
        self._sleep = sleep
        # The list's page size: lowered when a page exceeded the cap, and kept so for the warm environment.
        self._page_size = LIST_PAGE_SIZE

    def close(self) -> None:
        self._pool.close()

    # -- nodes -----------------------------------------------------------------------------------

    def list_fargate_nodes(self, deadline: float) -> list[FargateNode]:
        """Every Fargate node, following `continue` pagination; retries 429 within the deadline.

        A continue token can expire (410: etcd compacted the version the list was taken at, which a
        list of many pages on a busy cluster may outlast): the list is then taken again from its start,
        once, rather than finished from a different version or given up.
        """
        try:
            return self._list_fargate_nodes(deadline)
        except _ContinueExpired:
            try:
                return self._list_fargate_nodes(deadline)
            except _ContinueExpired as again:
                raise KubeApiError(
                    "http_410", f"{again} (twice: the list was taken again once)", 410
                ) from again

    def _list_fargate_nodes(self, deadline: float) -> list[FargateNode]:
        nodes: list[FargateNode] = []
        for page in self._pages("/api/v1/nodes", FARGATE_SELECTOR, deadline):
            items = page.get("items") or []
            if not isinstance(items, list):
                raise KubeApiError("bad_response", "GET /api/v1/nodes: `items` is not a list")
            for item in items:
                node = _fargate_node(item)
                if node is not None:
                    nodes.append(node)
        return nodes

    def _pages(self, path: str, selector: str, deadline: float) -> Iterator[dict[str, Any]]:
        """The list's pages. One over the body cap is asked again, from the same point, with half the
        limit (the API server takes a continue token with any limit); a full page under a quarter of
        the cap doubles the limit again, up to the default, for the next page."""
        token = ""
        while True:
            limit = self._page_size
            query = {"labelSelector": selector, "limit": str(limit)}
            if token:
                query["continue"] = token
            try:
                body, size = self._get_json(f"{path}?{urlencode(query)}", NODE_LIST_ACCEPT, deadline)
            except KubeApiError as err:
                if token and err.status == 410:
                    raise _ContinueExpired(str(err)) from err
                if err.reason == "too_large":
                    if self._page_size > MIN_LIST_PAGE_SIZE:
                        self._page_size = max(MIN_LIST_PAGE_SIZE, self._page_size // 2)
                        logger.warning(
                            "node list page over the cap: asked again with a smaller page",
                            extra={
                                "page_size": self._page_size,
                                "cap_bytes": self._max_body,
                                "error": str(err),
                            },
                        )
                        continue
                    raise KubeApiError(
                        "too_large",
                        f"GET {path}: a page of {self._page_size} nodes' metadata is still over the "
                        f"{self._max_body}-byte cap ({err}): some nodes carry unusually large labels, "
                        f"annotations or managedFields. Find them with `kubectl get nodes -l {selector} "
                        "-o json | jq -r '.items[] | \"\\(.metadata | tostring | length) "
                        "\\(.metadata.name)\"' | sort -n | tail`, and remove what other tools wrote there",
                    ) from err
                raise
            items = body.get("items")
            full = isinstance(items, list) and len(items) >= limit
            if full and limit < LIST_PAGE_SIZE and size < self._max_body // 4:
                self._page_size = min(LIST_PAGE_SIZE, limit * 2)
            yield body
            metadata = body.get("metadata") or {}
            following = metadata.get("continue") if isinstance(metadata, dict) else None
            if not following:
                return
            if not isinstance(following, str):
                raise KubeApiError("bad_response", f"GET {path}: `metadata.continue` is not a string")
            token = following

    def _get_json(self, path: str, accept: str, deadline: float) -> tuple[dict[str, Any], int]:
        """The answer's JSON object and its size in bytes."""
        renewed = False
        throttled = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KubeApiError("deadline", f"GET {path}: no time left before the run's deadline")
            response = self._request(path, accept, min(self._timeout_s, remaining))
            with closing(response):
                status = response.status
                if status == 401 and not renewed:
                    renewed = True
                    self._invalidate_token()
                    continue
                if status == 429:
                    backoff = min(MIN_RETRY_WAIT_S * 2**throttled, MAX_RETRY_BACKOFF_S)
                    wait = max(_retry_after(response.headers.get("Retry-After")), backoff)
                    throttled += 1
                    if time.monotonic() + wait < deadline:
                        self._sleep(wait)
                        continue
                if status != 200:
                    raise _status_error(status, path, _error_body(response))
                raw = self._read_capped(response, self._max_body)
            try:
                parsed = json.loads(raw)
            except (ValueError, RecursionError) as err:  # RecursionError: nested past the parser's depth
                raise KubeApiError("bad_response", f"GET {path}: the answer is not JSON") from err
            if not isinstance(parsed, dict):
                raise KubeApiError("bad_response", f"GET {path}: the answer is not a JSON object")
            return parsed, len(raw)

    # -- cAdvisor --------------------------------------------------------------------------------

    def scrape_cadvisor(
        self, nodes: Iterable[FargateNode], deadline: float, max_in_flight: int, timeout_s: float
    ) -> ManyGets[FargateNode, bytes]:
        """Every node's cAdvisor payload (decompressed) through the API server's node proxy, with at most
        `max_in_flight` requests at once, all on this thread (`https_many`).

        Iterate it for batches of (node, payload or exception); `as_api_error()` names an exception's
        reason. Nodes not answered by `deadline` get no result. A 401 renews the token and asks again,
        once per node.
        """
        renewed: set[str] = set()

        def request(node: FargateNode) -> tuple[str, dict[str, str]]:
            path = f"{self._base_path}{_cadvisor_path(node.name)}?{CADVISOR_QUERY}"
            return path, self._headers("text/plain", gzip=True)

        def read(node: FargateNode, response: Answer) -> bytes:
            if response.status == 401 and node.name not in renewed:
                renewed.add(node.name)
                self._invalidate_token()
                raise Again
            body, encoding = self._read_cadvisor(response, node.name)
            return _decode_body(body, encoding, self._max_body)

        timeout = min(self._timeout_s, timeout_s)
        return ManyGets(self._pool, nodes, request, read, max_in_flight, timeout, deadline)

    def _read_cadvisor(self, response: Answer, node: str) -> tuple[bytes, str]:
        """The body of a cAdvisor answer, still encoded, and its encoding."""
        if response.status != 200:
            raise _status_error(response.status, _cadvisor_path(node), _error_body(response))
        media_type = (response.headers.get("Content-Type") or "").partition(";")[0].strip().lower()
        if media_type and media_type not in METRICS_MEDIA_TYPES:
            # An error page from something between us and the kubelet, answered with 200.
            raise KubeApiError(
                "not_metrics", f"GET {_cadvisor_path(node)}: the answer is {media_type}, not metrics"
            )
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        return self._read_capped(response, self._max_body), encoding

    # -- plumbing --------------------------------------------------------------------------------

    def _headers(self, accept: str, gzip: bool) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._token()}",
            "Accept": accept,
            "Accept-Encoding": "gzip" if gzip else "identity",
            "User-Agent": "fargate-insights",
        }

    def _request(self, path: str, accept: str, timeout_s: float, gzip: bool = False) -> Answer:
        try:
            return self._pool.get(self._base_path + path, self._headers(accept, gzip), timeout_s)
        except TransportError as err:
            raise KubeApiError(err.reason, str(err)) from err

    def _read_capped(self, response: Answer, cap: int) -> bytes:
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > cap:
            raise KubeApiError("too_large", f"answer of {length} bytes exceeds the {cap}-byte cap")
        try:
            body = response.read(cap + 1)
        except TransportError as err:
            raise KubeApiError(err.reason, str(err)) from err
        if len(body) > cap:
            raise KubeApiError("too_large", f"answer exceeds the {cap}-byte cap")
        return body


def as_api_error(err: Exception) -> KubeApiError:
    """A scrape's failure as a KubeApiError: transport failures keep their reason, anything else is a bug."""
    if isinstance(err, KubeApiError):
        return err
    if isinstance(err, TransportError):
        return KubeApiError(err.reason, str(err))
    return KubeApiError("unexpected", f"{type(err).__name__}: {err}")


def _cadvisor_path(node: str) -> str:
    return f"/api/v1/nodes/{quote(node, safe='')}/proxy/metrics/cadvisor"


def _decode_body(body: bytes, encoding: str, cap: int) -> bytes:
    """Identity or gzip (possibly several members); a truncated or oversized stream is an error."""
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise KubeApiError("bad_response", f"unsupported Content-Encoding {encoding!r}")
    try:
        return inflate(body, cap)
    except InflateError as err:
        raise KubeApiError("bad_response" if err.reason == "invalid" else err.reason, str(err)) from err


# Of an error answer that is not a Status object (Go's http.Error text from the API server's filters, a
# kubelet's or a proxy's page), this much of its first line goes into the error's message.
ERROR_TEXT_CHARS: Final = 200
# Of an error answer's body, this much is read: enough for any Status object; the rest is left unread
# (the connection is then closed, not reused) and never makes the error a different one.
ERROR_BODY_BYTES: Final = 64 * 1024


def _error_body(response: Answer) -> bytes:
    """The start of an error answer's body; nothing when it cannot be read (the status is the error)."""
    try:
        return response.read(ERROR_BODY_BYTES)
    except TransportError:
        return b""


def _status_error(status: int, path: str, body: bytes) -> KubeApiError:
    message = ""
    gone = False
    try:
        parsed = json.loads(body)
        if not isinstance(parsed, dict):
            raise ValueError("not a Status object")
        message = str(parsed.get("message") or "")
        details = parsed.get("details")
        # The API server's own answer for a node that no longer exists (not a kubelet's 404).
        gone = (
            status == 404
            and parsed.get("reason") == "NotFound"
            and isinstance(details, dict)
            and details.get("kind") == "nodes"
        )
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        message = _error_text(body)
    reason = NODE_GONE if gone else f"http_{status}"
    return KubeApiError(reason, f"GET {path}: HTTP {status} {message}".rstrip(), status)


def _error_text(body: bytes) -> str:
    """The first line of a text error answer, shortened; nothing for bytes that are not text (a
    compressed or binary body)."""
    text = body.decode("utf-8", "replace").strip().partition("\n")[0].strip().replace("\t", " ")
    if "\ufffd" in text or not text.isprintable():
        return ""
    if text.startswith("<"):
        return "(an HTML page)"  # a proxy's or load balancer's page: its first line says nothing
    return text[:ERROR_TEXT_CHARS] + ("…" if len(text) > ERROR_TEXT_CHARS else "")


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or "1"), 0.0), 30.0)
    except ValueError:
        return 1.0


def _fargate_node(item: Any) -> FargateNode | None:
    if not isinstance(item, dict):
        return None
    metadata = item.get("metadata")
    if not isinstance(metadata, dict):
        return None
    name = metadata.get("name")
    labels = metadata.get("labels") or {}
    if not isinstance(name, str) or not name or not isinstance(labels, dict):
        return None
    if labels.get(FARGATE_LABEL) != FARGATE_LABEL_VALUE:
        return None  # the server filtered already; never trust a selector we cannot see applied
    hostname = labels.get(HOSTNAME_LABEL)
    if not isinstance(hostname, str) or not hostname:
        hostname = name.removeprefix("fargate-")
    return FargateNode(name=name, hostname=hostname)
