"""cadvisor.extract() on real kubelet `/metrics/cadvisor` payloads from ../shared/fixtures/cadvisor.

Expected values are written here as literals copied from the fixture lines (quoted in the comments),
and, for whole-payload checks, computed by a tiny independent line oracle below (plain regexes over
the raw text, no code from the package under test).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fargate_insights.cadvisor import Extraction, PodSeries, Sample, extract

K128 = "cadvisor/kubelet-1.28-containerd.txt"
K118 = "cadvisor/kubelet-1.18-docker-systemd.txt"
GOLDEN = "cadvisor/cadvisor-golden-synthetic.txt"


def _read(shared_fixtures: Path, name: str) -> bytes:
    return (shared_fixtures / name).read_bytes()


# --------------------------------------------------------------------------------------------------
# Independent oracle: what the fixture says about each pod, read with plain regexes.
# The fixtures contain no escaped characters and no '}' inside label values (checked with grep),
# so this deliberately simple reading is exact for them.
# --------------------------------------------------------------------------------------------------
_O_LINE = re.compile(r"^([a-z_]+)\{([^}]*)\} (\S+)(?: (\d+))?$")
_O_LABEL = re.compile(r'([a-z_]+)="([^"]*)"')
_O_POD_SEGMENT = re.compile(r"pod([0-9a-f_-]{8,})(?:\.slice)?$")


@dataclass
class OraclePod:
    namespace: str
    pod: str
    cpu: tuple[float, int | None] | None = None
    mem: tuple[float, int | None] | None = None
    mem_limit: float | None = None
    quota: float | None = None
    period: float | None = None
    rx: dict[tuple[str, str], tuple[float, int | None]] = field(default_factory=dict)
    tx: dict[tuple[str, str], tuple[float, int | None]] = field(default_factory=dict)


def _oracle_uid(cgroup_id: str) -> str | None:
    m = _O_POD_SEGMENT.search(cgroup_id.rsplit("/", 1)[-1])
    return m.group(1).replace("_", "-") if m else None


def oracle(text: str) -> dict[str, OraclePod]:
    pods: dict[str, OraclePod] = {}
    for line in text.split("\n"):
        m = _O_LINE.match(line)
        if not m:
            continue
        name, raw_labels, value_text, ts_text = m.groups()
        labels = dict(_O_LABEL.findall(raw_labels))
        if not labels.get("pod"):
            continue
        sample = (float(value_text), int(ts_text) if ts_text else None)
        cid = labels["id"]
        own_uid = _oracle_uid(cid)
        if own_uid and labels.get("container") == "" and labels.get("image") == "":
            pod = pods.setdefault(own_uid, OraclePod(labels["namespace"], labels["pod"]))
            if name == "container_cpu_usage_seconds_total" and labels.get("cpu") == "total":
                pod.cpu = sample
            elif name == "container_memory_working_set_bytes":
                pod.mem = sample
            elif name == "container_spec_memory_limit_bytes":
                pod.mem_limit = sample[0]
            elif name == "container_spec_cpu_quota":
                pod.quota = sample[0]
            elif name == "container_spec_cpu_period":
                pod.period = sample[0]
        sandbox = labels.get("container") == "POD" or (labels.get("container") == "" and labels.get("image"))
        if sandbox and name.startswith("container_network_") and name.endswith("_bytes_total"):
            parent = _oracle_uid(cid.rsplit("/", 1)[0])
            if parent is None:
                continue
            pod = pods.setdefault(parent, OraclePod(labels["namespace"], labels["pod"]))
            if name == "container_network_receive_bytes_total":
                pod.rx[(cid, labels["interface"])] = sample
            elif name == "container_network_transmit_bytes_total":
                pod.tx[(cid, labels["interface"])] = sample
    return pods


def _sample(s: Sample | None) -> tuple[float, int | None] | None:
    return None if s is None else (s.value, s.timestamp_ms)


def _as_oracle(p: PodSeries) -> OraclePod:
    return OraclePod(
        namespace=p.namespace,
        pod=p.pod,
        cpu=_sample(p.cpu_usage_seconds),
        mem=_sample(p.memory_working_set),
        mem_limit=p.memory_limit,
        quota=p.cpu_quota,
        period=p.cpu_period,
        rx={k: (v.value, v.timestamp_ms) for k, v in p.network_rx.items()},
        tx={k: (v.value, v.timestamp_ms) for k, v in p.network_tx.items()},
    )


# --------------------------------------------------------------------------------------------------
# The pods in each payload (namespace, name, uid), copied from the pod-cgroup rows of the fixtures:
#   grep -E '^container_memory_working_set_bytes\{container="",id="[^"]*pod[^"/]*",image=""' FILE
# --------------------------------------------------------------------------------------------------
PODS_128 = {
    ("kube-system", "coredns-5dd5756b68-xmx7l", "f60cfe75-0d1f-4879-8644-7d832f6695c6"),
    ("kube-system", "etcd-datagen-1-28", "1ef4c692eea758144142e9c7d9070cb5"),
    ("kube-system", "kindnet-znx27", "63b194d2-15f1-4886-b49b-65afa573a198"),
    ("kube-system", "kube-apiserver-datagen-1-28", "2383ad254aedd4a7b6f45a769394ab15"),
    ("kube-system", "kube-controller-manager-datagen-1-28", "d6c735f0d973eac32a6391eb78ca0441"),
    ("kube-system", "kube-proxy-2c7rb", "85aa8b16-d018-40a7-ab2e-748be5283c03"),
    ("kube-system", "kube-scheduler-datagen-1-28", "ee9572eeb3fa0d31f4c8e1881e84faca"),
    ("kube-system", "metrics-server-7c66d45ddc-dtv62", "8f707ce7-3f26-42a7-852b-930a6ab8c3e4"),
    ("kube-system", "storage-provisioner", "d6e32935-cf11-4b7d-aa9b-974e7a0ec9f0"),
    ("scraper", "e2e-container-creating", "c69fd08d-1b3b-4c40-8508-0d39003c5f81"),
    ("scraper", "e2e-cronjob-28326620-xnd62", "81934293-c36d-41b8-a344-aa3822ccaf4c"),
    ("scraper", "e2e-daemonset-xbvmt", "07504ee4-0de6-4882-a131-da7c0a540949"),
    ("scraper", "e2e-deployment-6c6fb66fd4-htr49", "3160ee10-e6be-4f4a-9101-1d5307a9180d"),
    ("scraper", "e2e-deployment-6c6fb66fd4-vjqkq", "b2cec80c-c000-4b09-b29e-2a9041893ea5"),
    ("scraper", "e2e-hpa-97d79d4cd-f48d7", "7151296d-ab86-4953-b163-f97eacb9d1da"),
    ("scraper", "e2e-kube-state-metrics-86f7c9c6bb-crhql", "846f61ad-6443-479c-98c4-5117e8c12fb9"),
    ("scraper", "e2e-scraper-5f59f96497-8cs7p", "a42d2b01-8c26-4feb-983e-014254e10cc1"),
    ("scraper", "e2e-statefulset-0", "455a4d7f-0df9-4536-8371-9eb4b89b7268"),
    ("scraper", "e2e-statefulset-1", "a3bbe57c-aabb-4307-86f8-28f5501eb07a"),
}

# systemd: cgroup names carry the uid with underscores (kubepods-besteffort-pod3f541c3f_b181_...slice);
# the uid must come out with dashes. Static pods (etcd, apiserver, ...) have a 32-hex uid, no dashes.
PODS_118 = {
    ("kube-system", "coredns-66bff467f8-hm847", "ffc5a2aa-d3c6-4b73-aa30-2da68fbf94de"),
    ("kube-system", "etcd-minikube", "98128cb37fdc7d34c4fde6719fa0b628"),
    ("kube-system", "kube-apiserver-minikube", "4236a7b1ea0007630c0aea66e14bb932"),
    ("kube-system", "kube-controller-manager-minikube", "b395a1e17534e69e27827b1f8d737725"),
    ("kube-system", "kube-proxy-nxj27", "3f541c3f-b181-443d-bf25-42ddf2468884"),
    ("kube-system", "kube-scheduler-minikube", "d12e497b0008e22acbcd5a9cf2dd48ac"),
    ("kube-system", "metrics-server-6c57fd97d-qs8qr", "0284f2dd-b5cb-4afb-9a28-fcd20756b15d"),
    ("kube-system", "storage-provisioner", "81b0b50a-1a55-478f-ba87-53bf08678eac"),
    ("scraper", "e2e-container-creating", "473d52d2-22f7-4bb5-92fe-ee980f2e7946"),
    ("scraper", "e2e-depl-7578f7cc7b-x8hcl", "6de57221-b672-4470-b563-65954cb4cd87"),
    ("scraper", "e2e-ds-t82pn", "aa7cdc9d-a28b-403d-9e20-cc7df380b454"),
    ("scraper", "e2e-hpa-5d484ffcc7-kkwbc", "7f0166a1-e64f-4d22-8a85-59064be3a822"),
    ("scraper", "e2e-kube-state-metrics-7c4d5c47fb-h2hqr", "8fe7164a-946f-422a-87a3-24d181fd7725"),
    ("scraper", "e2e-scraper-86c6f86f-l5fcl", "b1191f13-da93-4c3f-b7b5-c2aa41458b9b"),
    ("scraper", "e2e-statefulset-0", "b9232e2b-7e34-4ee5-85a2-a684ff8b0e85"),
    ("scraper", "e2e-statefulset-1", "e749ba33-6fcb-4d86-b629-ab9c03ae0bd0"),
}

# Pods whose pod cgroup has a container_spec_cpu_quota row (everything else: quota absent -> None).
#   grep -E '^container_spec_cpu_quota\{container="",id="[^"]*",image=""' FILE
QUOTA_128 = {
    "e2e-hpa-97d79d4cd-f48d7": 50000.0,
    "e2e-cronjob-28326620-xnd62": 8000.0,
    "kindnet-znx27": 10000.0,
    "e2e-container-creating": 1000.0,
}
QUOTA_118 = {"e2e-hpa-5d484ffcc7-kkwbc": 50000.0, "e2e-container-creating": 1000.0}

KINDNET_UID = "63b194d2-15f1-4886-b49b-65afa573a198"
KINDNET_SANDBOX = "/kubepods/pod63b194d2-15f1-4886-b49b-65afa573a198/c923f243ededc6fbdfdb22dca048e59d59bd66f38ee23343b891487034008d42"
HTR49_UID = "3160ee10-e6be-4f4a-9101-1d5307a9180d"
HTR49_SANDBOX = "/kubepods/burstable/pod3160ee10-e6be-4f4a-9101-1d5307a9180d/67366827ad7e28b2c945adc00ed75b27881cf3dac57c3449391015ec70f2f168"
KSM_UID = "846f61ad-6443-479c-98c4-5117e8c12fb9"
KSM_SANDBOX = "/kubepods/besteffort/pod846f61ad-6443-479c-98c4-5117e8c12fb9/5661449d4f220c22880a0aa3eadc504f0bd4b3815505a5bda0dc2b5b4f2cc08c"

HPA_UID = "7f0166a1-e64f-4d22-8a85-59064be3a822"
HPA_SANDBOX = (
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7f0166a1_e64f_4d22_8a85_59064be3a822.slice"
    "/docker-0afb48ed0a02bada58d74e5f5afe9ae05aba33297ce2d2151daa1be0a7a841b1.scope"
)
PROXY_UID = "3f541c3f-b181-443d-bf25-42ddf2468884"
PROXY_SANDBOX = (
    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3f541c3f_b181_443d_bf25_42ddf2468884.slice"
    "/docker-6e9dfd7fe7c50b82a07a6c777840af526e0a5269b6ec136c6516370109f3c100.scope"
)
CREATING_118_UID = "473d52d2-22f7-4bb5-92fe-ee980f2e7946"


def _check_kindnet(pods: dict[str, PodSeries]) -> None:
    p = pods[KINDNET_UID]
    assert (p.namespace, p.pod) == ("kube-system", "kindnet-znx27")
    # container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods/pod63b194d2-...",image="",...} 0.128211 1699597249039
    # (the app container row container="kindnet-cni" says 0.110155 1699597249532 and must not win)
    assert p.cpu_usage_seconds == Sample(0.128211, 1699597249039)
    # container_memory_working_set_bytes{container="",id="/kubepods/pod63b194d2-...",image="",...} 7.294976e+06 1699597249039
    # (kindnet-cni row: 7.08608e+06; pause row: 176128)
    assert p.memory_working_set == Sample(7294976.0, 1699597249039)
    # container_spec_memory_limit_bytes{container="",id="/kubepods/pod63b194d2-...",image="",...} 5.24288e+07
    assert p.memory_limit == 52428800.0
    # container_spec_cpu_quota{container="",id="/kubepods/pod63b194d2-...",image="",...} 10000
    assert p.cpu_quota == 10000.0
    # container_spec_cpu_period{container="",id="/kubepods/pod63b194d2-...",image="",...} 100000
    assert p.cpu_period == 100000.0
    # container_start_time_seconds{container="",id="/kubepods/pod63b194d2-...",image="",...} 1.699597134e+09
    assert p.start_time_seconds == 1699597134.0
    # Sandbox (image="registry.k8s.io/pause:3.9") rows, one per interface, ts 1699597240106.
    # The node row id="/" says eth0 5.63230485e+08: it must not be used.
    assert p.network_rx == {
        (KINDNET_SANDBOX, "eth0"): Sample(563230245.0, 1699597240106),
        (KINDNET_SANDBOX, "ip6tnl0"): Sample(0.0, 1699597240106),
        (KINDNET_SANDBOX, "tunl0"): Sample(0.0, 1699597240106),
    }
    assert p.network_tx == {
        (KINDNET_SANDBOX, "eth0"): Sample(7300595.0, 1699597240106),
        (KINDNET_SANDBOX, "ip6tnl0"): Sample(0.0, 1699597240106),
        (KINDNET_SANDBOX, "tunl0"): Sample(0.0, 1699597240106),
    }


def _check_htr49(pods: dict[str, PodSeries]) -> None:
    p = pods[HTR49_UID]
    assert (p.namespace, p.pod) == ("scraper", "e2e-deployment-6c6fb66fd4-htr49")
    # pod cgroup: ... 2.086835 1699597244988 (containers: compute-pi-digits 2.367819, failing-container 0.017089)
    assert p.cpu_usage_seconds == Sample(2.086835, 1699597244988)
    # pod cgroup: container_memory_working_set_bytes ... 1.1198464e+07 1699597244988
    assert p.memory_working_set == Sample(11198464.0, 1699597244988)
    # pod cgroup: container_spec_memory_limit_bytes ... 0  (container compute-pi-digits: 3.145728e+07)
    assert p.memory_limit == 0.0
    # Only the app container has container_spec_cpu_quota (8000); the pod cgroup has none -> None.
    assert p.cpu_quota is None
    assert p.cpu_period == 100000.0
    # sandbox: receive eth0/ip6tnl0/tunl0 all 0, transmit eth0 796, ts 1699597236952
    assert p.network_rx == {
        (HTR49_SANDBOX, "eth0"): Sample(0.0, 1699597236952),
        (HTR49_SANDBOX, "ip6tnl0"): Sample(0.0, 1699597236952),
        (HTR49_SANDBOX, "tunl0"): Sample(0.0, 1699597236952),
    }
    assert p.network_tx == {
        (HTR49_SANDBOX, "eth0"): Sample(796.0, 1699597236952),
        (HTR49_SANDBOX, "ip6tnl0"): Sample(0.0, 1699597236952),
        (HTR49_SANDBOX, "tunl0"): Sample(0.0, 1699597236952),
    }


def _check_ksm(pods: dict[str, PodSeries]) -> None:
    p = pods[KSM_UID]
    assert (p.namespace, p.pod) == ("scraper", "e2e-kube-state-metrics-86f7c9c6bb-crhql")
    # id="/kubepods/besteffort/pod846f61ad-..." ... 0.18985 1699597244369 (container row: 0.176237)
    assert p.cpu_usage_seconds == Sample(0.18985, 1699597244369)
    assert p.memory_working_set == Sample(12218368.0, 1699597244369)  # 1.2218368e+07
    assert p.memory_limit == 0.0
    assert p.cpu_quota is None
    assert p.cpu_period == 100000.0
    assert p.network_rx[(KSM_SANDBOX, "eth0")] == Sample(540578.0, 1699597245377)
    assert p.network_tx[(KSM_SANDBOX, "eth0")] == Sample(54338.0, 1699597245377)
    assert set(p.network_rx) == {(KSM_SANDBOX, i) for i in ("eth0", "ip6tnl0", "tunl0")}


def _check_hpa_118(pods: dict[str, PodSeries]) -> None:
    p = pods[HPA_UID]
    assert (p.namespace, p.pod) == ("scraper", "e2e-hpa-5d484ffcc7-kkwbc")
    # id="/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7f0166a1_e64f_..._59064be3a822.slice"
    #   container_cpu_usage_seconds_total ... 0.171640032 1639503053359
    assert p.cpu_usage_seconds == Sample(0.171640032, 1639503053359)
    assert p.memory_working_set == Sample(10620928.0, 1639503053359)  # 1.0620928e+07
    assert p.memory_limit == 0.0
    # container_spec_cpu_quota{container="",id="...pod7f0166a1_...slice",image="",...} 50000
    assert p.cpu_quota == 50000.0
    assert p.cpu_period == 100000.0
    # container="POD" rows: receive eth0 84, sit0 0; transmit eth0 0, sit0 0; ts 1639503051968.
    assert p.network_rx == {
        (HPA_SANDBOX, "eth0"): Sample(84.0, 1639503051968),
        (HPA_SANDBOX, "sit0"): Sample(0.0, 1639503051968),
    }
    assert p.network_tx == {
        (HPA_SANDBOX, "eth0"): Sample(0.0, 1639503051968),
        (HPA_SANDBOX, "sit0"): Sample(0.0, 1639503051968),
    }


def _check_proxy_118(pods: dict[str, PodSeries]) -> None:
    p = pods[PROXY_UID]
    assert (p.namespace, p.pod) == ("kube-system", "kube-proxy-nxj27")
    assert p.cpu_usage_seconds == Sample(0.98901546, 1639503048318)
    assert p.memory_working_set == Sample(9834496.0, 1639503048318)  # 9.834496e+06 (POD row: 630784)
    assert p.memory_limit == 0.0
    assert p.cpu_quota is None
    assert p.cpu_period == 100000.0
    # container="POD": receive eth0 7.79218282e+08 (node id="/" says 7.79282364e+08), transmit eth0 1.2330689e+07
    assert p.network_rx == {
        (PROXY_SANDBOX, "eth0"): Sample(779218282.0, 1639503049260),
        (PROXY_SANDBOX, "sit0"): Sample(0.0, 1639503049260),
    }
    assert p.network_tx == {
        (PROXY_SANDBOX, "eth0"): Sample(12330689.0, 1639503049260),
        (PROXY_SANDBOX, "sit0"): Sample(0.0, 1639503049260),
    }


def _check_creating_118(pods: dict[str, PodSeries]) -> None:
    # Guaranteed pod cgroup /kubepods.slice/kubepods-pod473d52d2_22f7_4bb5_92fe_ee980f2e7946.slice, no sandbox yet.
    p = pods[CREATING_118_UID]
    assert p.cpu_usage_seconds == Sample(1.000157527, 1639503042512)
    assert p.memory_working_set == Sample(0.0, 1639503042512)
    assert p.memory_limit == 4997120.0  # 4.99712e+06
    assert p.cpu_quota == 1000.0
    assert p.cpu_period == 100000.0
    assert p.network_rx == {}
    assert p.network_tx == {}


def _pod_set(result: Extraction) -> set[tuple[str, str, str]]:
    return {(p.namespace, p.pod, p.uid) for p in result.pods.values()}


# ------------------------------------------------------------------------------------------ tests


def test_containerd_pods_found(shared_fixtures: Path) -> None:
    result = extract(_read(shared_fixtures, K128))
    assert _pod_set(result) == PODS_128
    assert all(uid == p.uid for uid, p in result.pods.items())
    assert result.malformed_lines == 0


def test_docker_systemd_pods_found_with_dashed_uids(shared_fixtures: Path) -> None:
    result = extract(_read(shared_fixtures, K118))
    assert _pod_set(result) == PODS_118
    assert all("_" not in uid for uid in result.pods)
    assert result.malformed_lines == 0


def test_containerd_chosen_pods_exact(shared_fixtures: Path) -> None:
    pods = extract(_read(shared_fixtures, K128)).pods
    _check_kindnet(pods)
    _check_htr49(pods)
    _check_ksm(pods)


def test_docker_systemd_chosen_pods_exact(shared_fixtures: Path) -> None:
    pods = extract(_read(shared_fixtures, K118)).pods
    _check_hpa_118(pods)
    _check_proxy_118(pods)
    _check_creating_118(pods)


@pytest.mark.parametrize(("name", "quotas"), [(K128, QUOTA_128), (K118, QUOTA_118)])
def test_cpu_quota_only_where_pod_cgroup_has_a_quota_row(shared_fixtures: Path, name, quotas) -> None:
    pods = extract(_read(shared_fixtures, name)).pods
    got = {p.pod: p.cpu_quota for p in pods.values() if p.cpu_quota is not None}
    assert got == quotas
    # period is on every pod cgroup of these payloads (100000, not assumed: read)
    assert {p.cpu_period for p in pods.values()} == {100000.0}


@pytest.mark.parametrize("name", [K128, K118])
def test_every_pod_matches_independent_oracle(shared_fixtures: Path, name) -> None:
    raw = _read(shared_fixtures, name)
    expected = oracle(raw.decode())
    got = {uid: _as_oracle(p) for uid, p in extract(raw).pods.items()}
    assert set(got) == set(expected)
    for uid in expected:
        assert got[uid] == expected[uid], uid


@pytest.mark.parametrize("name", [K128, K118])
def test_node_rows_do_not_make_pods_and_network_only_from_sandbox(shared_fixtures: Path, name) -> None:
    raw = _read(shared_fixtures, name)
    pods = extract(raw).pods
    assert all(p.pod and p.namespace for p in pods.values())
    for p in pods.values():
        for cgroup, _iface in (*p.network_rx, *p.network_tx):
            assert cgroup != "/"
            # the sandbox cgroup is a child of this pod's cgroup, never the pod cgroup itself
            parent = cgroup.rsplit("/", 1)[0]
            assert parent.replace("_", "-").endswith(p.uid) or parent.replace("_", "-").endswith(
                p.uid + ".slice"
            )


def test_golden_synthetic_has_no_pods(shared_fixtures: Path) -> None:
    result = extract(_read(shared_fixtures, GOLDEN))
    assert result.pods == {}


# ------------------------------------------------------------------- truncated / shuffled / CRLF


def _line_offset(raw: bytes, prefix: bytes) -> int:
    offset = raw.find(b"\n" + prefix)
    assert offset >= 0, prefix
    return offset + 1


KINDNET_CPU_LINE = (
    b'container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods/pod63b194d2-15f1-4886-b49b-'
    b'65afa573a198",image="",name="",namespace="kube-system",pod="kindnet-znx27"} '
)


@pytest.mark.parametrize(
    "cut_after",
    [
        b"0.12",  # mid-value: 0.128211 cut to 0.12
        b"0.128211 16995972",  # mid-timestamp: 1699597249039 cut
        b"0.128211 ",  # value complete, timestamp missing entirely
    ],
)
def test_truncated_last_line_gives_no_value(shared_fixtures: Path, cut_after: bytes) -> None:
    raw = _read(shared_fixtures, K128)
    start = _line_offset(raw, KINDNET_CPU_LINE)
    assert raw[start + len(KINDNET_CPU_LINE) :].startswith(b"0.128211 1699597249039\n")
    truncated = raw[: start + len(KINDNET_CPU_LINE)] + cut_after
    result = extract(truncated)
    kindnet = result.pods.get(KINDNET_UID)
    assert kindnet is None or kindnet.cpu_usage_seconds is None
    # Lines before the cut are still used: ksm's cpu row comes earlier in the file (line 246 < 281).
    assert result.pods[KSM_UID].cpu_usage_seconds == Sample(0.18985, 1699597244369)


def test_truncated_first_and_only_line_gives_nothing() -> None:
    line = KINDNET_CPU_LINE + b"0.128211 1699597249039"
    assert extract(line[:-3]).pods == {}
    assert extract(line).pods == {}  # no newline at all: not a complete line


def _shuffle_keep_comments(raw: bytes, seed: int) -> bytes:
    lines = raw.split(b"\n")
    sample_idx = [i for i, line in enumerate(lines) if line and not line.startswith(b"#")]
    moved = [lines[i] for i in sample_idx]
    random.Random(seed).shuffle(moved)
    out = list(lines)
    for i, line in zip(sample_idx, moved, strict=True):
        out[i] = line
    return b"\n".join(out)


@pytest.mark.parametrize("name", [K128, K118])
@pytest.mark.parametrize("seed", [1, 2])
def test_shuffled_lines_give_same_pods_and_values(shared_fixtures: Path, name, seed) -> None:
    raw = _read(shared_fixtures, name)
    shuffled = _shuffle_keep_comments(raw, seed)
    assert shuffled != raw and sorted(shuffled.split(b"\n")) == sorted(raw.split(b"\n"))
    result = extract(shuffled)
    expected = oracle(raw.decode())
    assert {uid: _as_oracle(p) for uid, p in result.pods.items()} == expected
    if name == K128:
        _check_kindnet(result.pods)
        _check_htr49(result.pods)
    else:
        _check_hpa_118(result.pods)
        _check_proxy_118(result.pods)


@pytest.mark.parametrize("name", [K128, K118])
def test_crlf_line_endings_give_no_wrong_values(shared_fixtures: Path, name) -> None:
    raw = _read(shared_fixtures, name)
    crlf = raw.replace(b"\n", b"\r\n")
    expected = oracle(raw.decode())
    result = extract(crlf)
    # Whatever is extracted must be what the fixture says; a value with a trailing '\r' glued on, a
    # wrong pod, or a value read from the wrong row is not acceptable (dropping lines is).
    for uid, p in result.pods.items():
        assert uid in expected
        want = expected[uid]
        got = _as_oracle(p)
        assert (got.namespace, got.pod) == (want.namespace, want.pod)
        for attr in ("cpu", "mem", "mem_limit", "quota", "period"):
            value = getattr(got, attr)
            assert value is None or value == getattr(want, attr), (uid, attr)
        for attr in ("rx", "tx"):
            for key, value in getattr(got, attr).items():
                assert getattr(want, attr).get(key) == value, (uid, attr, key)
        assert "\r" not in p.pod and "\r" not in p.namespace and "\r" not in p.uid


def test_oracle_sanity_on_a_literal_snippet() -> None:
    """The oracle itself, on a hand-written snippet, so that a mistake in it cannot hide a bug."""
    text = (
        'container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods/burstable/pod0a0b0c0d-1111-2222-3333-444455556666",image="",name="",namespace="n",pod="p"} 1.5 1000\n'
        'container_network_receive_bytes_total{container="",id="/kubepods/burstable/pod0a0b0c0d-1111-2222-3333-444455556666/abc",image="pause",interface="eth0",name="abc",namespace="n",pod="p"} 7 999\n'
        'container_network_receive_bytes_total{container="",id="/",image="",interface="eth0",name="",namespace="",pod=""} 9 999\n'
    )
    o = oracle(text)
    assert list(o) == ["0a0b0c0d-1111-2222-3333-444455556666"]
    pod = o["0a0b0c0d-1111-2222-3333-444455556666"]
    assert pod.cpu == (1.5, 1000)
    assert pod.rx == {("/kubepods/burstable/pod0a0b0c0d-1111-2222-3333-444455556666/abc", "eth0"): (7.0, 999)}
    assert math.isclose(1.5, pod.cpu[0])
