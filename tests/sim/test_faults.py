"""Every fault kind, as a client sees it on the wire; throttled lists and expired-looking tokens."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from fargate_sim import Faults, SimulatedCluster
from fargate_sim.testing import ssl_context

from .conftest import ACCESS_KEY, CLUSTER, SECRET_KEY, Client


@pytest.fixture
def fsim(clock):
    cluster = SimulatedCluster(
        cluster_name=CLUSTER,
        pods=4,
        seed=9,
        clock=clock,
        credentials=(ACCESS_KEY, SECRET_KEY),
        faults=Faults(timeout_s=0.6, huge_bytes=3 * 1024 * 1024),
    )
    with cluster:
        yield cluster


def proxy(c: Client, node: str, gz: bool = True):
    return c.request(
        "GET",
        f"/api/v1/nodes/{node}/proxy/metrics/cadvisor",
        headers={"Accept-Encoding": "gzip" if gz else "identity"},
    )


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        ("http500", 500, "InternalError"),
        ("http503", 503, "ServiceUnavailable"),
        ("http403", 403, "Forbidden"),
        ("http404", 404, "NotFound"),
    ],
)
def test_http_status_faults(fsim, token, kind, status, reason):
    node = fsim.pods[0].node_name
    fsim.set_node_fault(node, kind)
    c = Client(fsim, token)
    response = proxy(c, node)
    assert response.status == status
    assert response.json()["reason"] == reason
    fsim.set_node_fault(node, None)
    assert proxy(c, node).status == 200
    assert fsim.stats.faults[kind] == 1
    c.close()


def test_http502_is_a_plain_bad_gateway(fsim, token):
    node = fsim.pods[0].node_name
    fsim.set_node_fault(node, "http502")
    c = Client(fsim, token)
    assert proxy(c, node).status == 502
    c.close()


def test_timeout_hangs_then_504(fsim, token):
    node = fsim.pods[0].node_name
    fsim.set_node_fault(node, "timeout")
    c = Client(fsim, token)
    c.conn.timeout = 0.2
    c.conn.close()
    with pytest.raises((TimeoutError, socket.timeout)):
        proxy(c, node)
    c.close()
    patient = Client(fsim, token)
    started = time.monotonic()
    assert proxy(patient, node).status == 504
    assert time.monotonic() - started >= 0.5
    patient.close()


def test_reset_cuts_the_body(fsim, token):
    node = fsim.pods[0].node_name
    fsim.set_node_fault(node, "reset")
    c = Client(fsim, token)
    with pytest.raises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
        proxy(c, node, gz=False)
    c.close()


def test_truncated_gzip(fsim, token):
    node = fsim.pods[0].node_name
    fsim.set_node_fault(node, "truncated_gzip")
    c = Client(fsim, token)
    response = proxy(c, node)
    assert response.status == 200 and response.headers["content-encoding"] == "gzip"
    with pytest.raises((EOFError, zlib.error)):
        gzip.decompress(response.body)
    c.close()


def test_cut_chunked_ends_without_the_last_chunk(fsim, token):
    """A kubelet that broke off mid-answer: gzip chunks, no last chunk, the connection closed."""
    node = fsim.pods[0].node_name
    fsim.set_node_fault(node, "cut_chunked")
    c = Client(fsim, token)
    with pytest.raises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
        proxy(c, node)
    c.close()


def test_not_metrics_is_html_with_200(fsim, token):
    node = fsim.pods[0].node_name
    fsim.set_node_fault(node, "not_metrics")
    c = Client(fsim, token)
    response = proxy(c, node)
    assert response.status == 200 and response.headers["content-type"].startswith("text/html")
    assert response.body.lstrip().startswith(b"<!DOCTYPE html>")
    c.close()


def test_garbage_mixes_bad_and_good_lines(fsim, token):
    node = fsim.pods[0].node_name
    fsim.set_node_fault(node, "garbage")
    c = Client(fsim, token)
    body = gzip.decompress(proxy(c, node).body)
    assert b"container_cpu_usage_seconds_total{" in body
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    c.close()


def test_huge_body_is_streamed(fsim, token):
    node = fsim.pods[0].node_name
    fsim.set_node_fault(node, "huge")
    c = Client(fsim, token)
    response = proxy(c, node)
    assert response.status == 200
    text = gzip.decompress(response.body)
    assert len(text) >= 3 * 1024 * 1024
    assert text.count(b"container_sim_padding_bytes{") > 10_000
    plain = proxy(c, node, gz=False)
    assert len(plain.body) >= 3 * 1024 * 1024
    c.close()


def test_random_faults_are_deterministic(clock, token):
    def outcomes():
        with SimulatedCluster(
            cluster_name=CLUSTER,
            pods=20,
            seed=4,
            clock=clock,
            credentials=(ACCESS_KEY, SECRET_KEY),
            faults=Faults(rate=0.3, kinds=("http500", "http503", "not_metrics")),
        ) as sim:
            c = Client(sim, token)
            result = [(p.node_name, proxy(c, p.node_name).status) for p in sim.pods for _ in range(2)]
            c.close()
            return result, sim.stats.faults_injected

    first, injected = outcomes()
    second, _ = outcomes()
    assert first == second
    assert 0 < injected < 40


def test_list_throttle_and_unauthorized_first(clock, token):
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=2,
        clock=clock,
        credentials=(ACCESS_KEY, SECRET_KEY),
        faults=Faults(list_throttle=2, retry_after_s=3, unauthorized_first=1),
    ) as sim:
        c = Client(sim, token)
        assert c.get("/api/v1/nodes").status == 401
        for _ in range(2):
            throttled = c.get("/api/v1/nodes")
            assert throttled.status == 429
            assert throttled.headers["retry-after"] == "3"
            # as the API server's flow-control filters answer: Go's http.Error, not a Status object
            assert throttled.headers["content-type"] == "text/plain; charset=utf-8"
            assert throttled.body == b"Too many requests, please try again later.\n"
        assert c.get("/api/v1/nodes").status == 200
        assert sim.stats.throttled == 2 and sim.stats.list_calls == 3
        c.close()


def test_unknown_fault_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown fault kind"):
        Faults(kinds=("boom",))


def test_concurrency_is_counted(clock, token):
    import threading

    with SimulatedCluster(
        cluster_name=CLUSTER, pods=8, clock=clock, credentials=(ACCESS_KEY, SECRET_KEY), latency_s=0.2
    ) as sim:

        def worker(node: str) -> None:
            c = Client(sim, token)
            assert proxy(c, node).status == 200
            c.close()

        threads = [threading.Thread(target=worker, args=(p.node_name,)) for p in sim.pods]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sim.stats.max_in_flight >= 4
        # A handler counts its request finished after writing the last byte, so a client can have read
        # its answer a moment before: wait for the server's threads to settle.
        settle_by = time.monotonic() + 5.0
        while sim.stats.in_flight and time.monotonic() < settle_by:
            time.sleep(0.01)
        assert sim.stats.proxy_requests == 8 and sim.stats.in_flight == 0


def test_standalone_process_writes_its_info_file(tmp_path: Path, token):
    info = tmp_path / "sim.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fargate_sim",
            "--pods",
            "3",
            "--seed",
            "7",
            "--cluster-name",
            CLUSTER,
            "--info-file",
            str(info),
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 20
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        data = json.loads(info.read_text())
        assert set(data) == {"endpoint", "ca_data", "cluster_name", "pid"}
        assert data["cluster_name"] == CLUSTER and data["pid"] == proc.pid
        import base64

        ca_pem = base64.b64decode(data["ca_data"]).decode()
        port = int(data["endpoint"].rsplit(":", 1)[1])
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl_context(ca_pem), timeout=5)
        conn.request("GET", "/api/v1/nodes", headers={"Authorization": f"Bearer {token}"})
        body = json.loads(conn.getresponse().read())
        assert len(body["items"]) == 5
        conn.close()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out.decode().strip() == data["endpoint"]
