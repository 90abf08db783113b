"""cAdvisor payloads of one simulated node, printed like kubelet v1.28+ with containerd prints them.

Each node's text is compiled once into a ``%``-template: everything that never changes (HELP/TYPE lines,
label sets, limits) is literal, and only counters and timestamps are placeholders. Rendering a
scrape is then one C-level ``%`` substitution, cheap enough to serve thousands of nodes a second.
Sample timestamps follow cAdvisor's housekeeping: each cgroup is re-read every ``housekeeping_s``
(at its own phase), and the counters printed are exact values at those timestamps.
"""

from __future__ import annotations

import functools
import gzip
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from .gofmt import go_float
from .model import SimPod

Fn = Callable[[float], float]

HELP: dict[str, tuple[str, str]] = {
    "cadvisor_version_info": (
        "gauge",
        "A metric with a constant '1' value labeled by kernel version, OS version, docker version, "
        "cadvisor version & cadvisor revision.",
    ),
    "container_blkio_device_usage_total": ("counter", "Blkio Device bytes usage"),
    "container_cpu_cfs_periods_total": ("counter", "Number of elapsed enforcement period intervals."),
    "container_cpu_cfs_throttled_periods_total": ("counter", "Number of throttled period intervals."),
    "container_cpu_cfs_throttled_seconds_total": (
        "counter",
        "Total time duration the container has been throttled.",
    ),
    "container_cpu_load_average_10s": (
        "gauge",
        "Value of container cpu load average over the last 10 seconds.",
    ),
    "container_cpu_system_seconds_total": ("counter", "Cumulative system cpu time consumed in seconds."),
    "container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed in seconds."),
    "container_cpu_user_seconds_total": ("counter", "Cumulative user cpu time consumed in seconds."),
    "container_file_descriptors": ("gauge", "Number of open file descriptors for the container."),
    "container_fs_inodes_free": ("gauge", "Number of available Inodes"),
    "container_fs_inodes_total": ("gauge", "Number of Inodes"),
    "container_fs_io_current": ("gauge", "Number of I/Os currently in progress"),
    "container_fs_io_time_seconds_total": ("counter", "Cumulative count of seconds spent doing I/Os"),
    "container_fs_io_time_weighted_seconds_total": ("counter", "Cumulative weighted I/O time in seconds"),
    "container_fs_limit_bytes": (
        "gauge",
        "Number of bytes that can be consumed by the container on this filesystem.",
    ),
    "container_fs_read_seconds_total": ("counter", "Cumulative count of seconds spent reading"),
    "container_fs_reads_bytes_total": ("counter", "Cumulative count of bytes read"),
    "container_fs_reads_merged_total": ("counter", "Cumulative count of reads merged"),
    "container_fs_reads_total": ("counter", "Cumulative count of reads completed"),
    "container_fs_sector_reads_total": ("counter", "Cumulative count of sector reads completed"),
    "container_fs_sector_writes_total": ("counter", "Cumulative count of sector writes completed"),
    "container_fs_usage_bytes": (
        "gauge",
        "Number of bytes that are consumed by the container on this filesystem.",
    ),
    "container_fs_write_seconds_total": ("counter", "Cumulative count of seconds spent writing"),
    "container_fs_writes_bytes_total": ("counter", "Cumulative count of bytes written"),
    "container_fs_writes_merged_total": ("counter", "Cumulative count of writes merged"),
    "container_fs_writes_total": ("counter", "Cumulative count of writes completed"),
    "container_last_seen": ("gauge", "Last time a container was seen by the exporter"),
    "container_memory_cache": ("gauge", "Number of bytes of page cache memory."),
    "container_memory_failcnt": ("counter", "Number of memory usage hits limits"),
    "container_memory_failures_total": ("counter", "Cumulative count of memory allocation failures."),
    "container_memory_mapped_file": ("gauge", "Size of memory mapped files in bytes."),
    "container_memory_max_usage_bytes": ("gauge", "Maximum memory usage recorded in bytes"),
    "container_memory_rss": ("gauge", "Size of RSS in bytes."),
    "container_memory_swap": ("gauge", "Container swap usage in bytes."),
    "container_memory_usage_bytes": (
        "gauge",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
    ),
    "container_memory_working_set_bytes": ("gauge", "Current working set in bytes."),
    "container_network_receive_bytes_total": ("counter", "Cumulative count of bytes received"),
    "container_network_receive_errors_total": (
        "counter",
        "Cumulative count of errors encountered while receiving",
    ),
    "container_network_receive_packets_dropped_total": (
        "counter",
        "Cumulative count of packets dropped while receiving",
    ),
    "container_network_receive_packets_total": ("counter", "Cumulative count of packets received"),
    "container_network_transmit_bytes_total": ("counter", "Cumulative count of bytes transmitted"),
    "container_network_transmit_errors_total": (
        "counter",
        "Cumulative count of errors encountered while transmitting",
    ),
    "container_network_transmit_packets_dropped_total": (
        "counter",
        "Cumulative count of packets dropped while transmitting",
    ),
    "container_network_transmit_packets_total": ("counter", "Cumulative count of packets transmitted"),
    "container_oom_events_total": ("counter", "Count of out of memory events observed for the container"),
    "container_processes": ("gauge", "Number of processes running inside the container."),
    "container_scrape_error": (
        "gauge",
        "1 if there was an error while getting container metrics, 0 otherwise",
    ),
    "container_sockets": ("gauge", "Number of open sockets for the container."),
    "container_spec_cpu_period": ("gauge", "CPU period of the container."),
    "container_spec_cpu_quota": ("gauge", "CPU quota of the container."),
    "container_spec_cpu_shares": ("gauge", "CPU share of the container."),
    "container_spec_memory_limit_bytes": ("gauge", "Memory limit for the container."),
    "container_spec_memory_reservation_limit_bytes": ("gauge", "Memory reservation limit for the container."),
    "container_spec_memory_swap_limit_bytes": ("gauge", "Memory swap limit for the container."),
    "container_start_time_seconds": ("gauge", "Start time of the container since unix epoch in seconds."),
    "container_tasks_state": ("gauge", "Number of tasks in given state"),
    "container_threads": ("gauge", "Number of threads running inside the container"),
    "container_threads_max": (
        "gauge",
        "Maximum number of threads allowed inside the container, infinity if value is zero",
    ),
    "container_ulimits_soft": (
        "gauge",
        "Soft ulimit values for the container root process. Unlimited if -1, except priority and nice",
    ),
    "machine_cpu_cores": ("gauge", "Number of logical CPU cores."),
    "machine_cpu_physical_cores": ("gauge", "Number of physical CPU cores."),
    "machine_cpu_sockets": ("gauge", "Number of CPU sockets."),
    "machine_memory_bytes": ("gauge", "Amount of memory installed on the machine."),
    "machine_nvm_avg_power_budget_watts": ("gauge", "NVM power budget."),
    "machine_nvm_capacity": (
        "gauge",
        "NVM capacity value labeled by NVM mode (memory mode or app direct mode).",
    ),
    "machine_scrape_error": ("gauge", "1 if there was an error while getting machine metrics, 0 otherwise."),
}

PAUSE_IMAGE = "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/pause:3.5"
PERIOD = 100000
TASK_STATES = ("iowaiting", "running", "sleeping", "stopped", "uninterruptible")


@dataclass
class CGroup:
    """One cgroup as cAdvisor sees it: its labels, its steady rates and its static stats."""

    key: str
    kind: str  # root | sys | pod | sandbox | app
    labels: dict[str, str]
    cpu: Fn
    start: float
    phase: float
    not_before: float = 0.0
    working_set: int = 0
    cache: int = 0
    rss: int = 0
    mapped: int = 0
    cpu_quota: int | None = None
    cpu_shares: int = 2
    memory_limit: int = 0
    threads: int = 1
    net: dict[str, tuple[Fn, Fn]] = field(default_factory=dict)
    io_write_rate: float = 0.0


Row = tuple[dict[str, str], str, bool]
_TEMPLATES: dict[tuple[object, ...], str] = {}
_TEMPLATES_LOCK = threading.Lock()


def _rx(pod: SimPod, iface: str, t: float) -> float:
    return pod.rx_bytes_at(t, iface)


def _tx(pod: SimPod, iface: str, t: float) -> float:
    return pod.tx_bytes_at(t, iface)


def _id_sort(cg: CGroup) -> str:
    """The cgroup id with hex ids replaced by a constant, so the row order depends only on the shape."""
    if cg.kind == "sandbox":
        return cg.labels["id"].rsplit("/", 1)[0] + "/0"
    if cg.kind == "app":
        return cg.labels["id"].rsplit("/", 1)[0] + "/1"
    return cg.labels["id"]


@functools.lru_cache(maxsize=65536)
def _int(v: float) -> str:
    return go_float(float(v))


class NodeMetrics:
    """The compiled cAdvisor template of one node and the functions that fill it at a given time."""

    def __init__(
        self,
        node_name: str,
        pod: SimPod | None,
        boot_time: float,
        seed: int,
        housekeeping_s: float = 1.0,
        memory_bytes: int = 2 * 1024**3,
        cpu_cores: int = 2,
    ) -> None:
        self.node_name = node_name
        self.pod = pod
        self.housekeeping_s = housekeeping_s
        self._rng = random.Random(f"{seed}:{node_name}:{pod.uid if pod else ''}")
        self._memory_bytes = memory_bytes
        self._cpu_cores = cpu_cores
        self._boot = boot_time
        self._cgroups = self._build_cgroups(pod)
        self._template = self._compile(None)
        self._filtered_templates: dict[frozenset[str], str] = {}
        self._static = self.static_values()
        self._lock = threading.Lock()
        self._cache_key: tuple[tuple[int, ...], frozenset[str] | None] | None = None
        self._cache_gz: bytes | None = None

    # ---- cgroup model -------------------------------------------------------------------------
    def _build_cgroups(self, pod: SimPod | None) -> list[CGroup]:
        rng = self._rng
        boot = self._boot
        pod_rate = pod.cpu_cores if pod else 0.0
        sys_rates = {
            "/system.slice/containerd.service": 0.004 + rng.random() * 0.004,
            "/system.slice/kubelet.service": 0.008 + rng.random() * 0.006,
            "/system.slice/systemd-journald.service": 0.0004,
            "/system.slice/chronyd.service": 0.0001,
            "/system.slice/dbus.service": 0.00005,
        }
        overhead = sum(sys_rates.values()) + 0.003
        empty = {"container": "", "image": "", "name": "", "namespace": "", "pod": ""}
        groups: list[CGroup] = []

        def add(cg: CGroup) -> CGroup:
            groups.append(cg)
            return cg

        def linear(rate: float, start: float) -> Fn:
            return lambda t: rate * max(0.0, t - start)

        ws_pod = pod.memory_working_set_bytes if pod else 0
        add(
            CGroup(
                key="c0",
                kind="root",
                labels={**empty, "id": "/"},
                cpu=linear(pod_rate + overhead, boot),
                start=boot,
                phase=rng.random(),
                working_set=ws_pod + 180 * 1024 * 1024,
                cache=300 * 1024 * 1024,
                rss=ws_pod + 120 * 1024 * 1024,
                mapped=60 * 1024 * 1024,
                memory_limit=self._memory_bytes,
                cpu_shares=1024,
                threads=210,
                net={
                    "eth0": (
                        (lambda t: pod.rx_bytes_at(t, "eth0") * 1.02 + 300 * (t - boot))
                        if pod
                        else linear(2000.0, boot),
                        (lambda t: pod.tx_bytes_at(t, "eth0") * 1.01 + 200 * (t - boot))
                        if pod
                        else linear(1500.0, boot),
                    ),
                    "tunl0": (linear(0.0, boot), linear(0.0, boot)),
                },
                io_write_rate=4096.0,
            )
        )
        qos = pod.qos_class if pod else "BestEffort"
        kube_ws = ws_pod + 2 * 1024 * 1024
        add(
            CGroup(
                key="c1",
                kind="sys",
                labels={**empty, "id": "/kubepods"},
                cpu=linear(pod_rate + 0.0002, boot),
                start=boot,
                phase=rng.random(),
                working_set=kube_ws,
                cache=20 * 1024 * 1024,
                rss=kube_ws,
                memory_limit=self._memory_bytes - 300 * 1024 * 1024,
                cpu_shares=self._cpu_cores * 1024,
                threads=12,
            )
        )
        for index, qos_name in enumerate(("besteffort", "burstable"), start=2):
            holds_pod = qos.lower() == qos_name
            add(
                CGroup(
                    key=f"c{index}",
                    kind="sys",
                    labels={**empty, "id": f"/kubepods/{qos_name}"},
                    cpu=linear((pod_rate if holds_pod else 0.0) + 0.00001, boot),
                    start=boot,
                    phase=rng.random(),
                    working_set=(ws_pod if holds_pod else 0) + 256 * 1024,
                    rss=(ws_pod if holds_pod else 0),
                    cpu_shares=2 if qos_name == "besteffort" else 102,
                    threads=8 if holds_pod else 0,
                )
            )
        for index, (cid, rate) in enumerate(sorted(sys_rates.items()), start=4):
            add(
                CGroup(
                    key=f"c{index}",
                    kind="sys",
                    labels={**empty, "id": cid},
                    cpu=linear(rate, boot),
                    start=boot,
                    phase=rng.random(),
                    working_set=int((rate * 4000 + 2) * 1024 * 1024) // 4096 * 4096,
                    cache=int(rate * 900 * 1024 * 1024) // 4096 * 4096,
                    rss=int((rate * 3500 + 1) * 1024 * 1024) // 4096 * 4096,
                    cpu_shares=1024,
                    threads=int(rate * 2000) + 1,
                )
            )
        if pod is None:
            return groups
        base = {"namespace": pod.namespace, "pod": pod.name}
        pod_id = pod.cgroup
        limit = pod.cpu_limit_millicores
        mem_limit = pod.memory_limit_bytes
        shares = max(2, int((pod.cpu_request_millicores or 2.0) * 1024 / 1000))
        pod_phase = rng.random()
        add(
            CGroup(
                key="p0",
                kind="pod",
                labels={**base, "container": "", "image": "", "name": "", "id": pod_id},
                cpu=pod.cpu_seconds_at,
                start=pod.start_time,
                phase=pod_phase,
                not_before=pod.start_time,
                working_set=pod.memory_working_set_bytes,
                cache=pod.memory_working_set_bytes // 8 // 4096 * 4096,
                rss=pod.memory_working_set_bytes * 9 // 10 // 4096 * 4096,
                mapped=pod.memory_working_set_bytes // 40 // 4096 * 4096,
                cpu_quota=round(limit / 1000 * PERIOD) if limit is not None else None,
                cpu_shares=shares,
                memory_limit=mem_limit or 0,
                threads=3 + 6 * len(pod.containers),
                io_write_rate=512.0,
            )
        )
        pause_ws = 245760
        add(
            CGroup(
                key="s0",
                kind="sandbox",
                labels={
                    **base,
                    "container": "",
                    "image": PAUSE_IMAGE,
                    "name": pod.sandbox_id,
                    "id": f"{pod_id}/{pod.sandbox_id}",
                },
                cpu=linear(pod.cpu_cores * 0.0015, pod.start_time),
                start=pod.start_time,
                phase=rng.random(),
                not_before=pod.start_time,
                working_set=pause_ws,
                rss=40960,
                cpu_shares=2,
                threads=1,
                net={iface: (partial(_rx, pod, iface), partial(_tx, pod, iface)) for iface in pod.interfaces},
            )
        )
        remaining_ws = max(0, pod.memory_working_set_bytes - pause_ws)
        n = len(pod.containers)
        for index, container in enumerate(pod.containers):
            share = 0.85 if n > 1 and index == 0 else (0.15 / max(1, n - 1) if n > 1 else 0.99)
            c_quota = None
            c_mem = 0
            if limit is not None:
                side = min(100.0, limit / 4)
                c_millis = limit - side * (n - 1) if index == 0 else side
                c_quota = round(c_millis / 1000 * PERIOD)
            if mem_limit is not None:
                side_mem = min(128 * 1024 * 1024, mem_limit // 4)
                c_mem = mem_limit - side_mem * (n - 1) if index == 0 else side_mem
            ws = int(remaining_ws * share) // 4096 * 4096
            add(
                CGroup(
                    key=f"a{index}",
                    kind="app",
                    labels={
                        **base,
                        "container": container,
                        "image": pod.images.get(container, ""),
                        "name": pod.container_ids[container],
                        "id": f"{pod_id}/{pod.container_ids[container]}",
                    },
                    cpu=linear(pod.cpu_cores * 0.998 * share, pod.start_time + 1.5),
                    start=pod.start_time + 1.5,
                    phase=rng.random(),
                    not_before=pod.start_time + 1.5,
                    working_set=ws,
                    cache=ws // 8 // 4096 * 4096,
                    rss=ws * 9 // 10 // 4096 * 4096,
                    mapped=ws // 40 // 4096 * 4096,
                    cpu_quota=c_quota,
                    cpu_shares=max(2, int(shares * (share if n > 1 else 1))),
                    memory_limit=c_mem,
                    threads=6 + self._rng.randrange(0, 30),
                    io_write_rate=512.0 * share,
                )
            )
        return groups

    # ---- template -----------------------------------------------------------------------------
    def shape(self) -> tuple[object, ...]:
        """What decides the layout of the text; nodes of one shape share one compiled template."""
        pod = self.pod
        cgroups = tuple(
            (cg.key, cg.kind, cg.labels.get("container", ""), cg.cpu_quota is None, tuple(sorted(cg.net)))
            for cg in self._cgroups
        )
        return (pod is None, pod.qos_class if pod else "", cgroups, len(self._devices()))

    def _rows(self, family: str, cg: CGroup) -> list[Row]:
        """The rows (extra labels, value, timestamped) a cgroup contributes to one family."""
        k = cg.key
        kind = cg.kind
        ts = True
        if family == "container_blkio_device_usage_total":
            if kind in ("root", "pod", "app"):
                base = {"device": "/dev/vda", "major": "254", "minor": "0"}
                return [
                    ({**base, "operation": "Read"}, f"%({k}_rb)s", ts),
                    ({**base, "operation": "Write"}, f"%({k}_wb)s", ts),
                ]
            return []
        if family.startswith("container_cpu_cfs_"):
            if cg.cpu_quota is None and kind != "root":
                return []
            suffix = {"periods": "cp", "throttled_periods": "ctp", "throttled_seconds": "cts"}
            part = family[len("container_cpu_cfs_") : -len("_total")]
            return [({}, f"%({k}_{suffix[part]})s", ts)]
        if family == "container_cpu_load_average_10s":
            return [({}, "0", ts)]
        if family == "container_cpu_usage_seconds_total":
            return [({"cpu": "total"}, f"%({k}_cpu)s", ts)]
        if family == "container_cpu_user_seconds_total":
            return [({}, f"%({k}_usr)s", ts)]
        if family == "container_cpu_system_seconds_total":
            return [({}, f"%({k}_sys)s", ts)]
        if family == "container_file_descriptors":
            return [({}, _int({"sandbox": 3, "app": 17}.get(kind, 0)), ts)]
        if family == "container_sockets":
            return [({}, _int({"app": 4}.get(kind, 0)), ts)]
        if family.startswith("container_fs_"):
            return self._fs_rows(family, cg)
        if family == "container_last_seen":
            return [({}, f"%({k}_seen)s", ts)]
        if family.startswith("container_memory_"):
            return self._memory_rows(family, cg)
        if family.startswith("container_network_"):
            rows: list[Row] = []
            for iface in sorted(cg.net):
                if family in (
                    "container_network_receive_bytes_total",
                    "container_network_transmit_bytes_total",
                ):
                    d = "rx" if "receive" in family else "tx"
                    rows.append(({"interface": iface}, f"%({k}_{d}_{iface})s", ts))
                elif family in (
                    "container_network_receive_packets_total",
                    "container_network_transmit_packets_total",
                ):
                    d = "rxp" if "receive" in family else "txp"
                    rows.append(({"interface": iface}, f"%({k}_{d}_{iface})s", ts))
                else:
                    rows.append(({"interface": iface}, "0", ts))
            return rows
        if family == "container_oom_events_total":
            return [({}, "0", ts)]
        if family == "container_processes":
            return [({}, _int({"sandbox": 1, "app": 1 + len(cg.labels["container"]) % 3}.get(kind, 0)), ts)]
        if family == "container_spec_cpu_period":
            return [({}, _int(PERIOD), False)]
        if family == "container_spec_cpu_quota":
            return [({}, f"%({k}_quota)s", False)] if cg.cpu_quota is not None else []
        if family == "container_spec_cpu_shares":
            return [({}, f"%({k}_shares)s", False)]
        if family == "container_spec_memory_limit_bytes":
            return [({}, f"%({k}_mlimit)s", False)]
        if family == "container_spec_memory_reservation_limit_bytes":
            return [({}, "0", False)]
        if family == "container_spec_memory_swap_limit_bytes":
            return [({}, f"%({k}_mlimit)s", False)]
        if family == "container_start_time_seconds":
            return [({}, f"%({k}_start)s", False)]
        if family == "container_tasks_state":
            return [({"state": s}, f"%({k}_threads)s" if s == "sleeping" else "0", ts) for s in TASK_STATES]
        if family == "container_threads":
            return [({}, f"%({k}_threads)s", ts)]
        if family == "container_threads_max":
            return [({}, _int(15432 if kind == "sys" and cg.labels["id"] == "/kubepods" else 0), ts)]
        if family == "container_ulimits_soft":
            if kind in ("root", "sandbox", "app"):
                return [({"ulimit": "max_open_files"}, _int(1048576 if kind == "root" else 65536), ts)]
            return []
        raise KeyError(family)

    def _fs_rows(self, family: str, cg: CGroup) -> list[Row]:
        k = cg.key
        if family in ("container_fs_reads_bytes_total", "container_fs_writes_bytes_total"):
            if cg.kind not in ("root", "pod", "app"):
                return []
            return [({"device": "/dev/vda"}, f"%({k}_{'rb' if 'reads' in family else 'wb'})s", True)]
        if family in ("container_fs_reads_total", "container_fs_writes_total") and cg.kind in ("pod", "app"):
            return [({"device": "/dev/vda"}, f"%({k}_{'ro' if 'reads' in family else 'wo'})s", True)]
        if cg.kind != "root":
            return []
        rows: list[Row] = []
        for index, (device, _, _, _) in enumerate(self._devices()):
            value: str
            if family == "container_fs_inodes_free":
                value = f"%(d{index}_ifree)s"
            elif family == "container_fs_inodes_total":
                value = f"%(d{index}_inodes)s"
            elif family == "container_fs_limit_bytes":
                value = f"%(d{index}_size)s"
            elif family == "container_fs_usage_bytes":
                value = f"%(d{index}_used)s"
            elif family == "container_fs_writes_total" and device == "/dev/vda1":
                value = f"%({k}_wo)s"
            elif family == "container_fs_reads_total" and device == "/dev/vda1":
                value = f"%({k}_ro)s"
            else:
                value = "0"
            rows.append(({"device": device}, value, True))
        if family in ("container_fs_reads_total", "container_fs_writes_total"):
            rows.append(({"device": "/dev/vda"}, f"%({k}_{'ro' if 'reads' in family else 'wo'})s", True))
        return rows

    def _devices(self) -> list[tuple[str, int, int, int]]:
        """Filesystems of a Fargate micro-VM: root disk, tmpfs mounts, the sandbox shm, overlays."""
        cached: list[tuple[str, int, int, int]] | None = getattr(self, "_device_cache", None)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.node_name}:dev")
        gib = 1024**3
        devices = [
            ("/dev", 64 * 1024 * 1024, 240000, 0),
            ("/dev/shm", self._memory_bytes // 2, 240000, 0),  # noqa: S108 - a device label
            ("/dev/vda1", 30 * gib, 1966080, int((6 + rng.random() * 3) * gib) // 4096 * 4096),
            ("/run", self._memory_bytes // 5, 240000, int(1.1e6) // 4096 * 4096),
            ("/run/lock", 5 * 1024 * 1024, 240000, 0),
            ("/tmp", self._memory_bytes // 2, 240000, 8192),  # noqa: S108 - a device label
        ]
        if self.pod is not None:
            sandbox = f"/run/containerd/io.containerd.grpc.v1.cri/sandboxes/{self.pod.sandbox_id}/shm"
            devices.append((sandbox, 64 * 1024 * 1024, 240000, 0))
        overlays = 2 + (len(self.pod.containers) if self.pod else 0)
        for index in range(overlays):
            devices.append((f"overlay_0-{120 + index * 7}", 30 * gib, 1966080, devices[2][3]))
        devices.sort()
        self._device_cache = devices
        return devices

    def _memory_rows(self, family: str, cg: CGroup) -> list[Row]:
        k = cg.key
        if family == "container_memory_failures_total":
            rows: list[Row] = []
            for ftype, key in (("pgfault", "pgf"), ("pgmajfault", "pgmf")):
                for scope in ("container", "hierarchy"):
                    rows.append(({"failure_type": ftype, "scope": scope}, f"%({k}_{key})s", True))
            return rows
        if family in (
            "container_memory_failcnt",
            "container_memory_max_usage_bytes",
            "container_memory_swap",
        ):
            return [({}, "0", True)]
        key = {
            "container_memory_cache": "cache",
            "container_memory_mapped_file": "mapped",
            "container_memory_rss": "rss",
            "container_memory_usage_bytes": "usage",
            "container_memory_working_set_bytes": "ws",
        }[family]
        return [({}, f"%({k}_{key})s", True)]

    def _machine_rows(self, family: str) -> list[tuple[str, str]]:
        ident = "%(m_ident)s"
        system = "%(m_system)s"
        if family == "machine_nvm_capacity":
            return [
                (f'{{{ident},mode="app_direct_mode",{system}}}', "0"),
                (f'{{{ident},mode="memory_mode",{system}}}', "0"),
            ]
        if family == "machine_nvm_avg_power_budget_watts":
            return [(f"{{{ident},{system}}}", "0")]
        if family == "machine_scrape_error":
            return [("", "0")]
        return [(f"{{{ident},{system}}}", f"%({family})s")]

    def static_values(self) -> dict[str, str]:
        """Placeholder values that are fixed for this node (identity strings, limits, memory)."""
        rng = random.Random(f"{self.node_name}:machine")
        boot_id = f"{rng.getrandbits(128):032x}"
        machine = f"ec2{rng.getrandbits(116):029x}"
        dashed = f"{boot_id[:8]}-{boot_id[8:12]}-{boot_id[12:16]}-{boot_id[16:20]}-{boot_id[20:]}"
        values = {
            "m_ident": f'boot_id="{dashed}",machine_id="{machine}"',
            "m_system": f'system_uuid="{machine}"',
            "machine_cpu_cores": _int(self._cpu_cores),
            "machine_cpu_physical_cores": _int(max(1, self._cpu_cores // 2)),
            "machine_cpu_sockets": "1",
            "machine_memory_bytes": _int(self._memory_bytes),
        }
        for index, (device, size, inodes, used) in enumerate(self._devices()):
            values[f"dev{index}"] = device
            values[f"d{index}_size"] = _int(size)
            values[f"d{index}_inodes"] = _int(inodes)
            values[f"d{index}_ifree"] = _int(inodes - used // 40960)
            values[f"d{index}_used"] = _int(used)
        for cg in self._cgroups:
            k = cg.key
            for label, value in self._identity_labels(cg).items():
                values[f"{k}_{label}"] = value
            values[f"{k}_ws"] = _int(cg.working_set)
            values[f"{k}_cache"] = _int(cg.cache)
            values[f"{k}_rss"] = _int(cg.rss)
            values[f"{k}_mapped"] = _int(cg.mapped)
            values[f"{k}_usage"] = _int(cg.working_set + cg.cache // 2)
            values[f"{k}_quota"] = _int(cg.cpu_quota or 0)
            values[f"{k}_shares"] = _int(cg.cpu_shares)
            values[f"{k}_mlimit"] = _int(cg.memory_limit)
            values[f"{k}_start"] = _int(math.floor(cg.start))
            values[f"{k}_threads"] = _int(cg.threads)
            values[f"{k}_pgf"] = _int(cg.rss // 3000)
            values[f"{k}_pgmf"] = _int(cg.rss // 1_500_000)
        return values

    @staticmethod
    def _identity_labels(cg: CGroup) -> dict[str, str]:
        """Label values that vary between nodes of one shape (they become placeholders)."""
        if cg.kind in ("root", "sys"):
            return {}
        return {name: cg.labels[name] for name in ("id", "image", "name", "namespace", "pod")}

    def _compile(self, names: frozenset[str] | None) -> str:
        """The node's template: every family, or only those in ``names`` (a filtering kubelet's answer)."""
        shape = (self.shape(), names)
        with _TEMPLATES_LOCK:
            cached = _TEMPLATES.get(shape)
        if cached is not None:
            return cached
        out: list[str] = []
        prepared: dict[str, tuple[str, tuple[str, ...], list[tuple[str, str]]]] = {}
        for cg in self._cgroups:
            identity = self._identity_labels(cg)
            items = sorted(
                (name, f"%({cg.key}_{name})s" if name in identity else value.replace("%", "%%"))
                for name, value in cg.labels.items()
            )
            # Sort keys use the real values' order, which placeholders preserve within one shape.
            prepared[cg.key] = (
                ",".join(f'{k}="{v}"' for k, v in items),
                tuple(cg.labels[name] if name != "id" else _id_sort(cg) for name, _ in items),
                items,
            )
        placeholders = {
            device: f"%(dev{index})s"
            for index, (device, _, _, _) in enumerate(self._devices())
            if device.startswith("/run/containerd/")
        }
        for family in sorted(HELP):
            if names is not None and family not in names:
                continue  # promhttp (client_golang >= 1.24) skips whole families not named in name[]
            kind, text = HELP[family]
            out.append(f"# HELP {family} {text}\n# TYPE {family} {kind}\n")
            if family == "cadvisor_version_info":
                out.append(
                    'cadvisor_version_info{cadvisorRevision="",cadvisorVersion="",dockerVersion="",'
                    'kernelVersion="5.10.226-214.880.amzn2.x86_64",osVersion="Amazon Linux 2"} 1\n'
                )
                continue
            if family == "container_scrape_error":
                out.append("container_scrape_error 0\n")
                continue
            if family.startswith("machine_"):
                out.extend(f"{family}{labels} {value}\n" for labels, value in self._machine_rows(family))
                continue
            lines: list[tuple[tuple[str, ...], str]] = []
            for cg in self._cgroups:
                base_text, base_key, base_items = prepared[cg.key]
                stamp = f" %({cg.key}_t)s\n"
                for extra, value, timestamped in self._rows(family, cg):
                    if extra:
                        items = sorted([*base_items, *extra.items()])
                        label_text = ",".join(f'{k}="{placeholders.get(v, v)}"' for k, v in items)
                        order = dict(zip([n for n, _ in base_items], base_key, strict=True))
                        sort_key = tuple(order.get(n, v) for n, v in items)
                    else:
                        label_text, sort_key = base_text, base_key
                    lines.append(
                        (sort_key, f"{family}{{{label_text}}} {value}{stamp if timestamped else chr(10)}")
                    )
            lines.sort(key=lambda item: item[0])
            out.extend(line for _, line in lines)
        template = "".join(out)
        with _TEMPLATES_LOCK:
            _TEMPLATES.setdefault(shape, template)
        return template

    # ---- rendering ----------------------------------------------------------------------------
    def timestamps(self, now: float) -> list[int]:
        """Millisecond timestamp of each cgroup's last housekeeping at ``now``."""
        h = self.housekeeping_s
        result = []
        for cg in self._cgroups:
            if h > 0:
                offset = cg.phase * h
                t = math.floor((now - offset) / h) * h + offset
            else:
                t = now
            ms = math.floor(t * 1000)
            floor_ms = math.ceil(cg.not_before * 1000)
            ms = max(ms, floor_ms) if floor_ms <= now * 1000 else math.floor(now * 1000)
            result.append(ms)
        return result

    def values(self, stamps: list[int]) -> dict[str, str]:
        """Placeholder values for the given per-cgroup timestamps."""
        values = dict(self._static)
        last = max(stamps) if stamps else 0
        for cg, ms in zip(self._cgroups, stamps, strict=True):
            k = cg.key
            t = ms / 1000
            cpu = cg.cpu(t)
            elapsed = max(0.0, t - cg.start)
            values[f"{k}_t"] = str(ms)
            values[f"{k}_cpu"] = go_float(cpu)
            values[f"{k}_usr"] = go_float(round(cpu * 0.72, 6))
            values[f"{k}_sys"] = go_float(round(cpu * 0.21, 6))
            periods = int(elapsed * 2.1)
            values[f"{k}_cp"] = go_float(periods)
            values[f"{k}_ctp"] = go_float(periods // 11)
            values[f"{k}_cts"] = go_float(round(cpu * 0.013, 6))
            values[f"{k}_seen"] = go_float(float(last // 1000))
            writes = int(elapsed * cg.io_write_rate)
            values[f"{k}_wb"] = go_float(writes // 4096 * 4096)
            values[f"{k}_wo"] = go_float(writes // 16384)
            values[f"{k}_rb"] = go_float(min(writes, 2_500_000) // 4096 * 4096)
            values[f"{k}_ro"] = go_float(min(writes, 2_500_000) // 65536)
            for iface, (rx, tx) in cg.net.items():
                rxv = rx(t)
                txv = tx(t)
                values[f"{k}_rx_{iface}"] = go_float(rxv)
                values[f"{k}_tx_{iface}"] = go_float(txv)
                values[f"{k}_rxp_{iface}"] = go_float(float(int(rxv / 870)))
                values[f"{k}_txp_{iface}"] = go_float(float(int(txv / 610)))
        return values

    def render(self, now: float, names: frozenset[str] | None = None) -> bytes:
        """The payload text at ``now``; only the families in ``names`` when given."""
        return self.render_gzip(now, names=names)[0]

    def render_gzip(
        self, now: float, level: int = 1, names: frozenset[str] | None = None
    ) -> tuple[bytes, bytes]:
        """The payload and its gzip encoding; only the families in ``names`` when given.

        Only the compressed form is cached (per housekeeping timestamp and family set), so thousands of
        nodes cost about 10 KB each; an identity request inflates it again, which is cheaper than
        re-rendering.
        """
        stamps = self.timestamps(now)
        key = (tuple(stamps), names)
        with self._lock:
            if key == self._cache_key and self._cache_gz is not None:
                compressed = self._cache_gz
                return gzip.decompress(compressed), compressed
        template = self._template
        if names is not None:
            filtered = self._filtered_templates.get(names)
            if filtered is None:
                filtered = self._filtered_templates[names] = self._compile(names)
            template = filtered
        raw = (template % self.values(stamps)).encode()
        compressed = gzip.compress(raw, compresslevel=level, mtime=0)
        with self._lock:
            self._cache_key, self._cache_gz = key, compressed
        return raw, compressed
