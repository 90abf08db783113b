"""Simulated pods: the ground truth that payloads are printed from and that tests compare against."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

NAMESPACES = ("default", "payments", "web", "batch", "kube-system")
_APPS = {
    "default": ("api", "frontend", "worker", "cart"),
    "payments": ("payments-api", "ledger", "fraud-check", "invoice-worker"),
    "web": ("nginx-ingress", "storefront", "web-ui", "static-site"),
    "batch": ("report-builder", "etl-runner", "image-resize", "nightly-export"),
    "kube-system": ("coredns", "metrics-server", "aws-load-balancer-controller"),
}
_IMAGES = {
    "app": (
        "123456789012.dkr.ecr.us-west-2.amazonaws.com/{app}:v1.{minor}.{patch}",
        "public.ecr.aws/docker/library/python:3.12-slim",
        "docker.io/library/nginx:1.25.3",
    ),
    "envoy": ("public.ecr.aws/appmesh/aws-appmesh-envoy:v1.27.2.0-prod",),
    "fluent-bit": ("public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0",),
    "log-router": ("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",),
}
_SIDECARS = ("envoy", "fluent-bit", "log-router")
_HASH_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generated names


@dataclass
class SimPod:
    """One Fargate pod (and therefore one Fargate node), with steady usage rates.

    Counter values are ``rate × (t − start_time)``, so a test can compute exactly what the payload says.
    """

    name: str
    namespace: str
    uid: str
    node_name: str
    hostname: str
    containers: list[str] = field(default_factory=lambda: ["app"])
    cpu_limit_millicores: float | None = None
    memory_limit_bytes: int | None = None
    cpu_cores: float = 0.05
    memory_working_set_bytes: int = 64 * 1024 * 1024
    rx_bytes_per_s: dict[str, float] = field(default_factory=lambda: {"eth0": 1000.0, "tunl0": 0.0})
    tx_bytes_per_s: dict[str, float] = field(default_factory=lambda: {"eth0": 500.0, "tunl0": 0.0})
    start_time: float = 0.0
    images: dict[str, str] = field(default_factory=dict)
    ip: str = ""
    zone: str = "us-west-2a"
    cpu_request_millicores: float | None = None
    memory_request_bytes: int | None = None
    container_ids: dict[str, str] = field(default_factory=dict)
    sandbox_id: str = ""

    def __post_init__(self) -> None:
        """Fill in identifiers a hand-written pod leaves out, derived from its uid so they are stable."""
        rng = random.Random(f"{self.uid}:ids")
        if not self.sandbox_id:
            self.sandbox_id = f"{rng.getrandbits(256):064x}"
        for container in self.containers:
            self.container_ids.setdefault(container, f"{rng.getrandbits(256):064x}")
            self.images.setdefault(container, "docker.io/library/busybox:1.36")
        if not self.ip:
            self.ip = _ip_from_hostname(self.hostname)

    @property
    def qos_class(self) -> str:
        """Kubernetes QoS class, which decides the cgroup path (``/kubepods[/burstable|/besteffort]``)."""
        if self.cpu_limit_millicores is not None and self.memory_limit_bytes is not None:
            return "Guaranteed"
        if (
            self.cpu_limit_millicores is None
            and self.memory_limit_bytes is None
            and self.cpu_request_millicores is None
            and self.memory_request_bytes is None
        ):
            return "BestEffort"
        return "Burstable"

    @property
    def cgroup(self) -> str:
        """The pod cgroup id as cAdvisor prints it (cgroupfs driver, containerd)."""
        qos = self.qos_class
        if qos == "Guaranteed":
            return f"/kubepods/pod{self.uid}"
        return f"/kubepods/{qos.lower()}/pod{self.uid}"

    def cpu_seconds_at(self, t: float) -> float:
        """Cumulative CPU seconds of the pod cgroup at time ``t``."""
        return self.cpu_cores * max(0.0, t - self.start_time)

    def rx_bytes_at(self, t: float, iface: str = "eth0") -> float:
        """Cumulative bytes received on ``iface`` at time ``t``."""
        return self.rx_bytes_per_s.get(iface, 0.0) * max(0.0, t - self.start_time)

    def tx_bytes_at(self, t: float, iface: str = "eth0") -> float:
        """Cumulative bytes transmitted on ``iface`` at time ``t``."""
        return self.tx_bytes_per_s.get(iface, 0.0) * max(0.0, t - self.start_time)

    @property
    def interfaces(self) -> list[str]:
        """Every interface the sandbox reports, sorted like cAdvisor prints them."""
        return sorted(set(self.rx_bytes_per_s) | set(self.tx_bytes_per_s))


def _ip_from_hostname(hostname: str) -> str:
    """``ip-10-0-12-34.region.compute.internal`` → ``10.0.12.34`` (or a placeholder)."""
    head = hostname.split(".", 1)[0]
    if head.startswith("ip-"):
        parts = head[3:].split("-")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            return ".".join(parts)
    return "10.0.0.1"


def node_names(ip: str, region: str) -> tuple[str, str]:
    """Fargate node name and its ``kubernetes.io/hostname`` for a pod IP."""
    host = f"ip-{ip.replace('.', '-')}.{region}.compute.internal"
    return f"fargate-{host}", host


def new_uid(rng: random.Random) -> str:
    """A random version-4 UUID drawn from ``rng`` (deterministic per seed)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _suffix(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_HASH_CHARS) for _ in range(n))


def generate_pods(count: int, seed: int, now: float, region: str = "us-west-2") -> list[SimPod]:
    """A deterministic, varied set of Fargate pods: some with limits, some without, several namespaces."""
    rng = random.Random(seed)
    pods: list[SimPod] = []
    used_ips: set[str] = set()
    used_names: set[str] = set()
    zones = [f"{region}{z}" for z in "abc"]
    limit_cycle = [(True, True), (False, False), (True, False), (False, True)]
    for index in range(count):
        namespace = (
            NAMESPACES[rng.randrange(len(NAMESPACES))] if index >= len(NAMESPACES) else NAMESPACES[index]
        )
        app = rng.choice(_APPS[namespace])
        while True:
            kind = rng.random()
            if namespace == "batch" and kind < 0.5:
                name = f"{app}-{rng.randrange(28_000_000, 29_000_000)}-{_suffix(rng, 5)}"
            elif kind < 0.15:
                name = f"{app}-{rng.randrange(0, 5)}"
            else:
                name = f"{app}-{_suffix(rng, rng.choice((9, 10)))}-{_suffix(rng, 5)}"
            if name not in used_names:
                used_names.add(name)
                break
        while True:
            ip = f"10.0.{rng.randrange(0, 192)}.{rng.randrange(2, 255)}"
            if ip not in used_ips:
                used_ips.add(ip)
                break
        node_name, hostname = node_names(ip, region)
        containers = ["app"]
        if rng.random() < 0.35:
            containers.append(rng.choice(_SIDECARS))
        has_cpu_limit, has_mem_limit = (
            limit_cycle[index % 4] if index < 8 else (rng.random() < 0.5, rng.random() < 0.55)
        )
        cpu_limit = float(rng.choice((250, 500, 1000, 2000))) if has_cpu_limit else None
        mem_limit = rng.choice((512, 1024, 2048, 4096)) * 1024 * 1024 if has_mem_limit else None
        capacity = cpu_limit if cpu_limit is not None else float(rng.choice((250, 500, 1000)))
        cpu_cores = round(capacity / 1000 * rng.uniform(0.02, 0.85), 6)
        mem_cap = mem_limit if mem_limit is not None else 1024 * 1024 * 1024
        working_set = int(mem_cap * rng.uniform(0.05, 0.8)) // 4096 * 4096
        rx = {"eth0": round(rng.uniform(200.0, 60_000.0), 3), "tunl0": 0.0}
        tx = {"eth0": round(rng.uniform(100.0, 40_000.0), 3), "tunl0": 0.0}
        if rng.random() < 0.25:
            rx["eth1"] = round(rng.uniform(50.0, 8_000.0), 3)
            tx["eth1"] = round(rng.uniform(50.0, 8_000.0), 3)
        images: dict[str, str] = {}
        for container in containers:
            template = rng.choice(_IMAGES[container if container in _IMAGES else "app"])
            images[container] = template.format(
                app=app, minor=rng.randrange(0, 30), patch=rng.randrange(0, 10)
            )
        cpu_request = cpu_limit if cpu_limit is not None else (None if rng.random() < 0.5 else 250.0)
        mem_request = (
            mem_limit if mem_limit is not None else (None if rng.random() < 0.5 else 256 * 1024 * 1024)
        )
        pods.append(
            SimPod(
                name=name,
                namespace=namespace,
                uid=new_uid(rng),
                node_name=node_name,
                hostname=hostname,
                containers=containers,
                cpu_limit_millicores=cpu_limit,
                memory_limit_bytes=mem_limit,
                cpu_cores=cpu_cores,
                memory_working_set_bytes=working_set,
                rx_bytes_per_s=rx,
                tx_bytes_per_s=tx,
                start_time=round(now - rng.uniform(600.0, 3 * 86400.0), 3),
                images=images,
                ip=ip,
                zone=zones[rng.randrange(3)],
                cpu_request_millicores=cpu_request,
                memory_request_bytes=mem_request,
            )
        )
    return pods
