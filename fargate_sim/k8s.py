"""Kubernetes API shapes: Status bodies, Node objects, label selectors and list pagination."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from .model import SimPod

KUBELET_VERSION = "v1.30.4-eks-a737599"
SERVER_GIT_VERSION = "v1.30.6-eks-7f9249a"
CONTAINERD_VERSION = "containerd://1.7.22"


def rfc3339(epoch: float) -> str:
    """Kubernetes timestamp format (seconds precision, Z)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``v1.Status`` failure body, as the API server returns for every error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


UNAUTHORIZED = status(401, "Unauthorized", "Unauthorized")


def fargate_node(pod: SimPod, region: str, resource_version: int, created: float) -> dict[str, Any]:
    """The Node object EKS creates for a Fargate pod's micro-VM."""
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "eks.amazonaws.com/compute-type": "fargate",
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": pod.zone,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": pod.hostname,
        "kubernetes.io/os": "linux",
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": pod.zone,
    }
    cpu = max(0.25, (pod.cpu_limit_millicores or pod.cpu_request_millicores or 250.0) / 1000)
    vcpu = 2 if cpu <= 2 else 4
    mem_gib = 4 if vcpu == 2 else 8
    return _node(
        name=pod.node_name,
        uid=_uid_from(pod.uid),
        labels=labels,
        annotations={
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        },
        provider_id=f"aws:///{pod.zone}/{_fargate_task(pod.uid)}/{pod.node_name}",
        taints=[{"key": "eks.amazonaws.com/compute-type", "value": "fargate", "effect": "NoSchedule"}],
        ip=pod.ip,
        hostname=pod.hostname,
        vcpu=vcpu,
        mem_kib=mem_gib * 1024 * 1024 - 360_000,
        max_pods=1,
        resource_version=resource_version,
        created=created,
        os_image="Amazon Linux 2",
        kernel="5.10.226-214.880.amzn2.x86_64",
    )


def ec2_node(index: int, region: str, resource_version: int, created: float) -> dict[str, Any]:
    """A managed node group EC2 instance, so that the Fargate label selector has something to exclude."""
    ip = f"10.0.{200 + index // 250}.{10 + index % 240}"
    host = f"ip-{ip.replace('.', '-')}.{region}.compute.internal"
    zone = f"{region}{'abc'[index % 3]}"
    instance = f"i-0{index:04x}5b7c9d1e2f3a4b"
    labels = {
        "alpha.eksctl.io/nodegroup-name": "default-ng",
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "m5.large",
        "beta.kubernetes.io/os": "linux",
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "eks.amazonaws.com/nodegroup": "default-ng",
        "eks.amazonaws.com/nodegroup-image": "ami-0a1b2c3d4e5f60718",
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "k8s.io/cloud-provider-aws": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": host,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "m5.large",
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
    }
    return _node(
        name=host,
        uid=f"5e0c{index:04x}-1d2e-4f3a-8b9c-0d1e2f3a4b5c",
        labels=labels,
        annotations={"alpha.kubernetes.io/provided-node-ip": ip, "node.alpha.kubernetes.io/ttl": "0"},
        provider_id=f"aws:///{zone}/{instance}",
        taints=None,
        ip=ip,
        hostname=host,
        vcpu=2,
        mem_kib=7_910_348,
        max_pods=29,
        resource_version=resource_version,
        created=created,
        os_image="Amazon Linux 2023.6.20241121",
        kernel="6.1.115-126.197.amzn2023.x86_64",
    )


def _uid_from(pod_uid: str) -> str:
    return pod_uid[::-1][:8] + pod_uid[8:]


def _fargate_task(uid: str) -> str:
    return uid.replace("-", "")[:32]


def _node(
    *,
    name: str,
    uid: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    provider_id: str,
    taints: list[dict[str, str]] | None,
    ip: str,
    hostname: str,
    vcpu: int,
    mem_kib: int,
    max_pods: int,
    resource_version: int,
    created: float,
    os_image: str,
    kernel: str,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"providerID": provider_id}
    if taints:
        spec["taints"] = taints
    capacity = {
        "cpu": str(vcpu),
        "ephemeral-storage": "30787492Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{mem_kib}Ki",
        "pods": str(max_pods),
    }
    allocatable = {**capacity, "cpu": f"{vcpu * 1000 - 70}m", "memory": f"{mem_kib - 450_000}Ki"}
    stamp = rfc3339(created)
    conditions = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    return {
        "metadata": {
            "name": name,
            "uid": uid,
            "resourceVersion": str(resource_version),
            "creationTimestamp": stamp,
            "labels": labels,
            "annotations": annotations,
            "managedFields": _managed_fields(labels, annotations, spec, capacity, conditions, stamp),
        },
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": kind,
                    "status": value,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                    "reason": reason,
                    "message": message,
                }
                for kind, value, reason, message in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": hostname},
                {"type": "InternalDNS", "address": hostname},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": uid.replace("-", ""),
                "systemUUID": "ec2" + uid.replace("-", "")[3:],
                "bootID": uid,
                "kernelVersion": kernel,
                "osImage": os_image,
                "containerRuntimeVersion": CONTAINERD_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def _fields(keys: Any) -> dict[str, Any]:
    return {f"f:{key}": {} for key in keys}


def _managed_fields(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    spec: Mapping[str, Any],
    capacity: Mapping[str, str],
    conditions: list[tuple[str, str, str, str]],
    stamp: str,
) -> list[dict[str, Any]]:
    """The server-side-apply bookkeeping the API server keeps on every Node and returns with its metadata,
    also in a metadata-only list: the kubelet's registration and status updates and the node controller's
    TTL annotation. It is most of a Fargate node's metadata bytes, so the listing's cost includes it."""
    kubelet_annotations = [key for key in annotations if key != "node.alpha.kubernetes.io/ttl"]
    status_fields: dict[str, Any] = {
        "f:addresses": {
            ".": {},
            **{
                f'k:{{"type":"{kind}"}}': {".": {}, "f:address": {}, "f:type": {}}
                for kind in ("Hostname", "InternalDNS", "InternalIP")
            },
        },
        "f:allocatable": _fields(capacity),
        "f:capacity": _fields(capacity),
        "f:conditions": {
            f'k:{{"type":"{kind}"}}': _fields(
                ("lastHeartbeatTime", "lastTransitionTime", "message", "reason", "status")
            )
            for kind, *_ in sorted(conditions)
        },
        "f:daemonEndpoints": {"f:kubeletEndpoint": {"f:Port": {}}},
        "f:images": {},
        "f:nodeInfo": _fields(
            (
                "architecture",
                "bootID",
                "containerRuntimeVersion",
                "kernelVersion",
                "kubeProxyVersion",
                "kubeletVersion",
                "machineID",
                "operatingSystem",
                "osImage",
                "systemUUID",
            )
        ),
    }

    def entry(manager: str, fields: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
        managed: dict[str, Any] = {
            "manager": manager,
            "operation": "Update",
            "apiVersion": "v1",
            "time": stamp,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        if subresource is not None:
            managed["subresource"] = subresource
        return managed

    return [
        entry(
            "kubelet",
            {
                "f:metadata": {
                    "f:annotations": {".": {}, **_fields(kubelet_annotations)},
                    "f:labels": {".": {}, **_fields(labels)},
                },
                "f:spec": _fields(spec),
            },
        ),
        entry(
            "kube-controller-manager",
            {"f:metadata": {"f:annotations": _fields(["node.alpha.kubernetes.io/ttl"])}},
        ),
        entry("kubelet", {"f:status": status_fields}, "status"),
    ]


# ---- label selectors ----------------------------------------------------------------------------
Requirement = Callable[[Mapping[str, str]], bool]
_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"


class SelectorError(ValueError):
    """An unparsable label selector (the API server answers 400)."""


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


def _check(pattern: str, text: str) -> str:
    if not re.fullmatch(pattern, text):
        raise SelectorError(f"invalid label selector term: {text!r}")
    return text


def _in(key: str, values: set[str], positive: bool, labels: Mapping[str, str]) -> bool:
    return (labels.get(key) in values) == positive


def _equals(key: str, value: str, positive: bool, labels: Mapping[str, str]) -> bool:
    return (labels.get(key) == value) == positive


def _exists(key: str, positive: bool, labels: Mapping[str, str]) -> bool:
    return (key in labels) == positive


def parse_selector(selector: str) -> list[Requirement]:
    """Parse `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, joined by commas."""
    requirements: list[Requirement] = []
    for term in _split_terms(selector):
        match = re.fullmatch(r"(\S+)\s+(in|notin)\s*\(([^)]*)\)", term)
        if match:
            key = _check(_KEY, match.group(1))
            values = {_check(_VALUE, v.strip()) for v in match.group(3).split(",")}
            requirements.append(partial(_in, key, values, match.group(2) == "in"))
            continue
        match = re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*(\S*)", term)
        if match:
            key = _check(_KEY, match.group(1))
            value = _check(_VALUE, match.group(3))
            requirements.append(partial(_equals, key, value, match.group(2) != "!="))
            continue
        if term.startswith("!"):
            key = _check(_KEY, term[1:].strip())
            requirements.append(partial(_exists, key, False))
            continue
        key = _check(_KEY, term)
        requirements.append(partial(_exists, key, True))
    return requirements


def matches(requirements: list[Requirement], labels: Mapping[str, str]) -> bool:
    """True when every requirement holds."""
    return all(req(labels) for req in requirements)


# ---- pagination ---------------------------------------------------------------------------------
def encode_continue(resource_version: int, last_name: str) -> str:
    """An opaque continue token shaped like the API server's (base64 JSON with rv and start key)."""
    payload = {"v": "meta.k8s.io/v1", "rv": resource_version, "start": last_name + "\x00"}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    """Inverse of encode_continue; raises ValueError on anything else."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    payload = json.loads(raw)
    if payload.get("v") != "meta.k8s.io/v1" or not isinstance(payload.get("start"), str):
        raise ValueError("bad continue token")
    return int(payload["rv"]), str(payload["start"]).rstrip("\x00")
