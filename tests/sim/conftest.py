"""Fixtures for the simulator's own tests: a running cluster and an HTTPS client that trusts its CA."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from fargate_sim import ManualClock, SimulatedCluster
from fargate_sim.testing import make_token, ssl_context

ACCESS_KEY = "AKIASIMTESTKEY000001"
SECRET_KEY = "sim-test-secret"
CLUSTER = "simtest"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Client:
    """A tiny keep-alive HTTPS client; every request carries a fresh-enough EKS token."""

    def __init__(self, sim: SimulatedCluster, token: str | None) -> None:
        self.sim = sim
        self.token = token
        self.context = ssl_context(sim.ca_pem)
        self.conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=self.context, timeout=10)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        all_headers = dict(headers or {})
        if self.token is not None:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        self.conn.request(method, path, body=body, headers=all_headers)
        response = self.conn.getresponse()
        data = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def get(self, path: str, **headers: str) -> Response:
        return self.request("GET", path, headers={k.replace("_", "-"): v for k, v in headers.items()})

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="session")
def token() -> str:
    return make_token(CLUSTER, ACCESS_KEY, SECRET_KEY)


@pytest.fixture
def clock() -> ManualClock:
    import time

    return ManualClock(time.time())


@pytest.fixture
def sim(clock) -> Iterator[SimulatedCluster]:
    cluster = SimulatedCluster(
        cluster_name=CLUSTER, pods=12, seed=3, clock=clock, credentials=(ACCESS_KEY, SECRET_KEY), ec2_nodes=2
    )
    with cluster:
        yield cluster


@pytest.fixture
def client(sim, token) -> Iterator[Client]:
    c = Client(sim, token)
    yield c
    c.close()


def make_client(sim: SimulatedCluster, token: str | None) -> Client:
    return Client(sim, token)


__all__ = ["ACCESS_KEY", "CLUSTER", "SECRET_KEY", "Client", "make_client", "ssl"]
