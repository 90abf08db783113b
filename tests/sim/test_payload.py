"""The cAdvisor payload: real families and label sets, Go number formatting, counters that follow SimPod."""

from __future__ import annotations

import gzip
import re

from prometheus_client.parser import text_string_to_metric_families

from fargate_sim import ManualClock, SimPod, SimulatedCluster
from fargate_sim.gofmt import go_float
from fargate_sim.model import generate_pods

from .conftest import ACCESS_KEY, CLUSTER, SECRET_KEY, Client

REQUIRED_FAMILIES = {
    "container_cpu_usage_seconds_total",
    "container_cpu_user_seconds_total",
    "container_cpu_system_seconds_total",
    "container_memory_working_set_bytes",
    "container_memory_usage_bytes",
    "container_memory_rss",
    "container_memory_cache",
    "container_fs_usage_bytes",
    "container_fs_reads_bytes_total",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
    "container_network_receive_packets_total",
    "container_network_receive_errors_total",
    "container_network_transmit_packets_dropped_total",
    "container_spec_cpu_period",
    "container_spec_cpu_quota",
    "container_spec_cpu_shares",
    "container_spec_memory_limit_bytes",
    "container_tasks_state",
    "container_start_time_seconds",
    "container_last_seen",
    "machine_cpu_cores",
    "machine_memory_bytes",
}


def scrape(client: Client, node: str, gz: bool = False) -> tuple[str, dict[str, str]]:
    headers = {"Accept-Encoding": "gzip"} if gz else {"Accept-Encoding": "identity"}
    response = client.request("GET", f"/api/v1/nodes/{node}/proxy/metrics/cadvisor", headers=headers)
    assert response.status == 200
    body = gzip.decompress(response.body) if gz else response.body
    return body.decode(), response.headers


def samples(text: str) -> list[tuple[str, dict[str, str], float, int | None]]:
    """(name, labels, value, timestamp ms) of every sample, parsed by hand to keep timestamps exact."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-z_:0-9]+)(\{(.*)\})? (\S+)( (\d+))?", line)
        assert m, line
        labels = dict(re.findall(r'([a-zA-Z_]+)="([^"]*)"', m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4)), int(m.group(6)) if m.group(6) else None))
    return out


def test_go_float_formatting():
    assert go_float(536870912) == "5.36870912e+08"
    assert go_float(110.329293) == "110.329293"
    assert go_float(100000) == "100000"
    assert go_float(1e6) == "1e+06"
    assert go_float(0.00001) == "1e-05"
    assert go_float(229376) == "229376"


def test_payload_parses_and_has_the_real_layout(sim, client):
    pod = sim.pods[0]
    text, headers = scrape(client, pod.node_name)
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "content-encoding" not in headers
    assert 90_000 <= len(text) <= 220_000
    families = {f.name: f for f in text_string_to_metric_families(text)}
    names = {re.sub(r"_total$", "", n) for n in REQUIRED_FAMILIES}
    assert names <= set(families)
    # Families sorted by name, HELP then TYPE, like client_golang prints them.
    declared = re.findall(r"^# HELP (\S+) ", text, flags=re.M)
    assert declared == sorted(declared)
    assert all(f"# TYPE {n} " in text for n in declared)

    rows = samples(text)
    pod_cg = [
        r for r in rows if r[1].get("pod") == pod.name and r[1]["container"] == "" and r[1]["image"] == ""
    ]
    assert pod_cg and all(r[1]["id"].endswith(f"pod{pod.uid}") for r in pod_cg)
    sandbox = [r for r in rows if r[1].get("pod") == pod.name and r[1]["container"] == "" and r[1]["image"]]
    assert sandbox and all(re.search(r"/[0-9a-f]{64}$", r[1]["id"]) for r in sandbox)
    assert all("pause" in r[1]["image"] for r in sandbox)
    apps = {r[1]["container"] for r in rows if r[1].get("pod") == pod.name and r[1]["container"]}
    assert apps == set(pod.containers)
    network = [r for r in rows if r[0].startswith("container_network_") and r[1].get("pod") == pod.name]
    assert network and all(r in sandbox for r in network)
    assert {r[1]["interface"] for r in network} == set(pod.interfaces)
    node_rows = {r[1]["id"] for r in rows if r[1].get("pod") == ""}
    assert {
        "/",
        "/kubepods",
        "/system.slice/kubelet.service",
        "/system.slice/containerd.service",
    } <= node_rows
    # Timestamps on usage rows, none on spec rows.
    assert all(r[3] is not None for r in rows if r[0] == "container_cpu_usage_seconds_total")
    assert all(r[3] is None for r in rows if r[0].startswith("container_spec_"))


def test_gzip_and_identity_bodies_match(sim, client):
    node = sim.pods[1].node_name
    plain, _ = scrape(client, node)
    unzipped, headers = scrape(client, node, gz=True)
    assert headers["content-encoding"] == "gzip"
    assert plain == unzipped
    assert sim.stats.gzip_responses == 1 and sim.stats.identity_responses == 1


def test_limits_match_the_pod(sim, client):
    pods = sim.pods
    assert any(p.cpu_limit_millicores for p in pods) and any(p.cpu_limit_millicores is None for p in pods)
    assert any(p.memory_limit_bytes for p in pods) and any(p.memory_limit_bytes is None for p in pods)
    for pod in pods:
        rows = samples(scrape(client, pod.node_name)[0])
        mine = [
            r for r in rows if r[1].get("pod") == pod.name and r[1]["container"] == "" and r[1]["image"] == ""
        ]
        by_name = {r[0]: r for r in mine}
        quota = [r for r in mine if r[0] == "container_spec_cpu_quota"]
        if pod.cpu_limit_millicores is None:
            assert quota == []
        else:
            period = by_name["container_spec_cpu_period"][2]
            assert quota[0][2] / period * 1000 == pod.cpu_limit_millicores
        assert by_name["container_spec_memory_limit_bytes"][2] == (pod.memory_limit_bytes or 0)
        assert by_name["container_memory_working_set_bytes"][2] == pod.memory_working_set_bytes


def test_counters_follow_simpod_under_a_manual_clock(sim, client):
    clock: ManualClock = sim.clock
    pod = sim.pods[2]

    def read():
        rows = samples(scrape(client, pod.node_name)[0])
        cpu = next(
            r
            for r in rows
            if r[0] == "container_cpu_usage_seconds_total"
            and r[1].get("pod") == pod.name
            and r[1]["container"] == ""
            and r[1]["image"] == ""
        )
        rx = {
            r[1]["interface"]: r
            for r in rows
            if r[0] == "container_network_receive_bytes_total" and r[1].get("pod") == pod.name
        }
        tx = {
            r[1]["interface"]: r
            for r in rows
            if r[0] == "container_network_transmit_bytes_total" and r[1].get("pod") == pod.name
        }
        return cpu, rx, tx

    cpu1, rx1, tx1 = read()
    assert cpu1[2] == pod.cpu_seconds_at(cpu1[3] / 1000)
    for iface, row in rx1.items():
        assert row[2] == pod.rx_bytes_at(row[3] / 1000, iface)
        assert tx1[iface][2] == pod.tx_bytes_at(tx1[iface][3] / 1000, iface)
    assert cpu1[3] <= clock.now() * 1000
    clock.advance(60)
    cpu2, rx2, tx2 = read()
    dt = (cpu2[3] - cpu1[3]) / 1000
    assert abs(dt - 60) < 1e-9
    assert abs((cpu2[2] - cpu1[2]) / dt - pod.cpu_cores) < 1e-6 * pod.cpu_cores
    rx_rate = sum((rx2[i][2] - rx1[i][2]) / ((rx2[i][3] - rx1[i][3]) / 1000) for i in rx1)
    tx_rate = sum((tx2[i][2] - tx1[i][2]) / ((tx2[i][3] - tx1[i][3]) / 1000) for i in tx1)
    assert abs(rx_rate - sum(pod.rx_bytes_per_s.values())) < 1e-6 * rx_rate
    assert abs(tx_rate - sum(pod.tx_bytes_per_s.values())) < 1e-6 * tx_rate


def test_recreated_pod_starts_from_zero(sim, client):
    old = sim.pods[0]
    sim.clock.advance(30)
    new = sim.recreate_pod(old.name)
    sim.clock.advance(0.5)
    rows = samples(scrape(client, new.node_name)[0])
    ids = {r[1]["id"] for r in rows if r[1].get("pod") == new.name}
    assert all(new.uid in i for i in ids) and not any(old.uid in i for i in ids)
    cpu = next(
        r
        for r in rows
        if r[0] == "container_cpu_usage_seconds_total"
        and r[1].get("pod") == new.name
        and r[1]["container"] == ""
        and not r[1]["image"]
    )
    assert 0 <= cpu[2] <= new.cpu_cores * 0.5 + 1e-9
    assert cpu[2] == new.cpu_seconds_at(cpu[3] / 1000)


def test_generation_is_deterministic_and_varied():
    a = generate_pods(40, 7, 1_790_000_000.0)
    b = generate_pods(40, 7, 1_790_000_000.0)
    assert a == b
    assert a != generate_pods(40, 8, 1_790_000_000.0)
    assert len({p.namespace for p in a}) >= 4
    assert len({p.name for p in a}) == 40 and len({p.node_name for p in a}) == 40
    assert any(len(p.containers) > 1 for p in a)
    assert any(p.rx_bytes_per_s.get("eth1") for p in a)
    assert all(p.rx_bytes_per_s["tunl0"] == 0 for p in a)
    assert all(p.hostname == p.node_name.removeprefix("fargate-") for p in a)


def test_hand_written_pods(clock, token):
    pod = SimPod(
        name="hand-made-0",
        namespace="default",
        uid="11111111-2222-4333-8444-555555555555",
        node_name="fargate-ip-10-0-9-9.us-west-2.compute.internal",
        hostname="ip-10-0-9-9.us-west-2.compute.internal",
        containers=["app"],
        cpu_limit_millicores=500.0,
        memory_limit_bytes=None,
        cpu_cores=0.125,
        memory_working_set_bytes=50_000_000,
        rx_bytes_per_s={"eth0": 100.0},
        tx_bytes_per_s={"eth0": 50.0},
        start_time=clock.now() - 100,
    )
    with SimulatedCluster(
        cluster_name=CLUSTER, pods=[pod], clock=clock, credentials=(ACCESS_KEY, SECRET_KEY)
    ) as sim:
        c = Client(sim, token)
        rows = samples(scrape(c, pod.node_name)[0])
        quota = [
            r
            for r in rows
            if r[0] == "container_spec_cpu_quota" and r[1].get("pod") == pod.name and not r[1]["container"]
        ]
        assert [r[2] for r in quota] == [50000.0]
        c.close()


def _family_of(line: str) -> str:
    """The family a line belongs to: the name after `# HELP`/`# TYPE`, or the sample's metric name."""
    if line.startswith("# "):
        return line.split()[2]
    match = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
    assert match, line
    return match.group()


NAME_QUERY = "name%5B%5D=container_spec_cpu_quota&name%5B%5D=container_network_receive_bytes_total"
ASKED = {"container_spec_cpu_quota", "container_network_receive_bytes_total"}


def test_name_filter_sends_only_the_asked_families_like_client_golang_1_24(clock, token):
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=3,
        seed=5,
        clock=clock,
        credentials=(ACCESS_KEY, SECRET_KEY),
        name_filter=True,
    ) as sim:
        c = Client(sim, token)
        node = sim.pods[0].node_name
        path = f"/api/v1/nodes/{node}/proxy/metrics/cadvisor"
        full, _ = scrape(c, node)
        for gz in (False, True):
            headers = {"Accept-Encoding": "gzip" if gz else "identity"}
            response = c.request("GET", f"{path}?{NAME_QUERY}", headers=headers)
            assert response.status == 200
            text = (gzip.decompress(response.body) if gz else response.body).decode()
            # Whole families, in the payload's order, HELP and TYPE lines included; nothing else.
            assert text.splitlines() == [line for line in full.splitlines() if _family_of(line) in ASKED]
            assert {family.name for family in text_string_to_metric_families(text)} == {
                "container_spec_cpu_quota",
                "container_network_receive_bytes",  # prometheus_client drops a counter's _total
            }
        assert sim.stats.filtered_responses == 2
        # A name the kubelet does not have: an empty answer, as promhttp writes it.
        nothing = c.request(
            "GET", f"{path}?name%5B%5D=no_such_family", headers={"Accept-Encoding": "identity"}
        )
        assert nothing.status == 200 and nothing.body == b""
        c.close()


def test_without_name_filter_the_parameter_is_ignored_like_older_kubelets(sim, client):
    node = sim.pods[0].node_name
    full, _ = scrape(client, node)
    response = client.request(
        "GET",
        f"/api/v1/nodes/{node}/proxy/metrics/cadvisor?{NAME_QUERY}",
        headers={"Accept-Encoding": "identity"},
    )
    assert response.status == 200 and response.body.decode() == full
    assert sim.stats.filtered_responses == 0
