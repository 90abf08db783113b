"""`python -m fargate_insights demo`, run as a user runs it (`make demo ARGS=...`): a subprocess with the
repository on PYTHONPATH, checked on what it prints, its exit code and what it leaves behind.

The pods the demo simulates are known here too: the simulator generates them from the seed alone, so a
SimulatedCluster built (not started) with the demo's size and seed has the same names and limits."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fargate_insights import demo
from fargate_insights.__main__ import main
from fargate_sim import SimPod, SimulatedCluster
from tests.cli.processes import group_left

REPO = Path(__file__).resolve().parents[2]
INTERVAL = "0.2"  # seconds between cycles: fast, and still two samples apart (the demo's housekeeping)
DEFAULT_SEED = 7

DIMENSION_SETS = [
    ["ClusterName", "LaunchType"],
    ["ClusterName", "Namespace", "LaunchType"],
    ["ClusterName", "Namespace", "PodName", "LaunchType"],
]
EMF_UNITS = {"None", "Percent", "Bytes", "Bytes/Second", "Count", "Milliseconds"}
RATES = ("pod_cpu_usage_total", "pod_network_rx_bytes", "pod_network_tx_bytes")
COLUMNS = ["NAMESPACE", "POD", "CPU (m)", "CPU %LIM", "MEMORY", "MEM %LIM", "NET RX/s", "NET TX/s"]
SUMMARY = re.compile(
    r"(?P<discovered>\d+) Fargate nodes: (?P<scraped>\d+) scraped, (?P<failed>\d+) failed"
    r"(?: \((?P<reasons>[^)]*)\))?, (?P<skipped>\d+) skipped at the deadline, "
    r"(?P<gone>\d+) gone since the list; "
    r"(?P<documents>\d+) pod documents, (?P<without>\d+) pods without metrics"
)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    leftover_processes: bool


def demo_env() -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "lambda_src"), str(REPO)]),
        # The demo must not need the user's AWS setup: no profile, no metadata service.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    return env


def run_demo(*args: str, timeout: float = 30.0, env: dict[str, str] | None = None) -> Run:
    """The demo in its own session: whatever it started is in its process group, findable after exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fargate_insights", "demo", "--interval", INTERVAL, *args],
        cwd=REPO,
        env=env or demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.communicate()
        raise
    return Run(process.returncode, stdout, stderr, group_left(process.pid))


@cache
def simulated_pods(count: int, seed: int = DEFAULT_SEED) -> dict[str, SimPod]:
    cluster = SimulatedCluster(cluster_name=demo.DEMO_CLUSTER, pods=count, seed=seed, region=demo.DEMO_REGION)
    return {pod.name: pod for pod in cluster.pods}


def emf_lines(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line parsed; a line that is not JSON fails here."""
    return [json.loads(line) for line in stdout.splitlines()]


def cycles_of(documents: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split on the function's health document, which each invocation writes last."""
    cycles: list[list[dict[str, Any]]] = [[]]
    for doc in documents:
        cycles[-1].append(doc)
        if doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "FargateInsights":
            cycles.append([])
    assert cycles[-1] == [], "stdout does not end with the run's health document"
    return cycles[:-1]


def value(doc: dict[str, Any], name: str) -> float:
    """Powertools writes each metric value as a one-element list."""
    raw = doc[name]
    return raw[0] if isinstance(raw, list) else raw


def assert_valid_emf(doc: dict[str, Any]) -> None:
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
    assert meta["CloudWatchMetrics"], doc
    for directive in meta["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str) and directive["Namespace"]
        assert directive["Dimensions"], doc
        for dimension_set in directive["Dimensions"]:
            assert dimension_set, "an empty dimension set publishes a metric without dimensions"
            for name in dimension_set:
                assert isinstance(doc[name], str) and doc[name], (name, doc)
        assert directive["Metrics"], doc
        for metric in directive["Metrics"]:
            assert metric["Unit"] in EMF_UNITS, metric
            raw = doc[metric["Name"]]
            values = raw if isinstance(raw, list) else [raw]
            assert values and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
            ), (metric, raw)


def assert_pod_document(doc: dict[str, Any], pods: dict[str, SimPod]) -> None:
    assert_valid_emf(doc)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ContainerInsights"
    assert directive["Dimensions"] == DIMENSION_SETS
    assert doc["ClusterName"] == demo.DEMO_CLUSTER
    assert doc["LaunchType"] == "fargate"
    assert doc["Type"] == "Pod"
    pod = pods[doc["PodName"]]
    assert doc["Namespace"] == pod.namespace
    assert doc["kubernetes"]["pod_name"] == pod.name
    assert doc["kubernetes"]["host"] == pod.hostname


def pod_documents(cycle: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in cycle if d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ContainerInsights"]


def run_summaries(stderr: str) -> list[dict[str, Any]]:
    """The handler's own `run summary` log records (JSON lines on stderr), one per cycle."""
    records = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("message") == "run summary":
                records.append(record)
    return records


def readable_summaries(text: str) -> list[re.Match[str]]:
    return [m for m in (SUMMARY.search(line) for line in text.splitlines() if "summary:" in line) if m]


def reasons_of(match: re.Match[str]) -> dict[str, int]:
    if not match["reasons"]:
        return {}
    pairs = (part.split(": ") for part in match["reasons"].split(", "))
    return {reason: int(count) for reason, count in pairs}


# ---- table mode ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table_run() -> Run:
    return run_demo("--cycles", "2")  # the default number of pods


def parse_tables(stdout: str) -> list[tuple[list[str], list[list[str]], str]]:
    """(header cells, rows of cells, summary line) for each cycle's section."""
    sections = re.split(r"^== cycle \d+/\d+: \d+ pod documents ==$", stdout, flags=re.M)[1:]
    tables = []
    for section in sections:
        lines = [line for line in section.strip("\n").splitlines() if line]
        summary_at = next(i for i, line in enumerate(lines) if line.startswith("summary: "))
        cells = [re.split(r"\s{2,}", line.strip()) for line in lines[:summary_at]]
        tables.append((cells[0], cells[1:], lines[summary_at]))
    return tables


def test_table_mode_prints_one_table_per_cycle_and_exits_0(table_run: Run) -> None:
    assert table_run.returncode == 0, table_run.stderr
    assert "Traceback" not in table_run.stderr
    pods = simulated_pods(36)
    assert len({pod.namespace for pod in pods.values()}) >= 4, "the default cluster has several namespaces"
    tables = parse_tables(table_run.stdout)
    assert len(tables) == 2
    for header, rows, summary in tables:
        assert header == COLUMNS
        assert all(len(row) == len(COLUMNS) for row in rows), rows
        assert sorted((row[0], row[1]) for row in rows) == sorted(
            (p.namespace, p.name) for p in pods.values()
        )
        assert summary.startswith("summary: 36 Fargate nodes: 36 scraped, 0 failed, 0 skipped"), summary
        assert "36 pod documents" in summary
        for row in rows:
            assert row[4] != "-", f"memory is a gauge: known from the first cycle ({row})"
    assert "(CPU and network are rates: they appear from the second cycle on)" in table_run.stdout


def test_table_mode_shows_rates_in_the_last_cycle_and_limits_only_for_pods_that_have_them(
    table_run: Run,
) -> None:
    pods = simulated_pods(36)
    with_cpu_limit = {p.name for p in pods.values() if p.cpu_limit_millicores is not None}
    with_memory_limit = {p.name for p in pods.values() if p.memory_limit_bytes is not None}
    assert with_cpu_limit and with_memory_limit, "the default cluster has pods with limits"
    assert with_cpu_limit != set(pods) and with_memory_limit != set(pods), "and pods without"
    (_, first, _), (_, last, _) = parse_tables(table_run.stdout)
    for row in first:
        assert row[2] == row[3] == row[6] == row[7] == "-", f"no rate from a single sample ({row})"
    for rows, cycle in ((first, 1), (last, 2)):
        for row in rows:
            assert (row[5] != "-") == (row[1] in with_memory_limit), (cycle, row)
            if row[5] != "-":
                assert re.fullmatch(r"\d+\.\d%", row[5]), row
    for row in last:
        assert re.fullmatch(r"\d+\.\d", row[2]), f"CPU millicores in the second cycle ({row})"
        assert re.fullmatch(r"\d+(\.\d)? (B|KiB|MiB|GiB)/s", row[6]), row
        assert re.fullmatch(r"\d+(\.\d)? (B|KiB|MiB|GiB)/s", row[7]), row
        assert (row[3] != "-") == (row[1] in with_cpu_limit), row
        if row[3] != "-":
            assert re.fullmatch(r"\d+\.\d%", row[3]), row


def test_demo_stops_everything_it_started(table_run: Run) -> None:
    assert not table_run.leftover_processes, "a process of the demo's session outlived it"
    match = re.search(r"at https://127\.0\.0\.1:(\d+):", table_run.stdout)
    assert match, table_run.stdout[:300]
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.settimeout(2)
        probe.connect(("127.0.0.1", int(match[1])))


# ---- emf mode ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emf_run() -> Run:
    return run_demo("--format", "emf", "--pods", "40", "--cycles", "2")


def test_emf_mode_prints_only_emf_documents(emf_run: Run) -> None:
    assert emf_run.returncode == 0, emf_run.stderr
    documents = emf_lines(emf_run.stdout)  # nothing but JSON on stdout
    assert documents
    for doc in documents:
        assert_valid_emf(doc)
    cycles = cycles_of(documents)
    assert len(cycles) == 2
    pods = simulated_pods(40)
    for cycle in cycles:
        for doc in pod_documents(cycle):
            assert_pod_document(doc, pods)
    assert not emf_run.leftover_processes


def test_emf_mode_last_cycle_has_every_pod_with_rates_and_its_limits(emf_run: Run) -> None:
    pods = simulated_pods(40)
    last = pod_documents(cycles_of(emf_lines(emf_run.stdout))[-1])
    names = [doc["PodName"] for doc in last]
    assert sorted(names) == sorted(pods), "one document per pod, every pod"
    for doc in last:
        pod = pods[doc["PodName"]]
        metrics = {m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        assert set(RATES) <= metrics, (pod.name, metrics)
        assert value(doc, "pod_memory_working_set") > 0
        if pod.cpu_limit_millicores is None:
            assert not metrics & {"pod_cpu_limit", "pod_cpu_utilization_over_pod_limit"}, pod.name
        else:
            assert value(doc, "pod_cpu_limit") == pytest.approx(pod.cpu_limit_millicores)
            assert "pod_cpu_utilization_over_pod_limit" in metrics
        if pod.memory_limit_bytes is None:
            assert not metrics & {"pod_memory_limit", "pod_memory_utilization_over_pod_limit"}, pod.name
        else:
            assert value(doc, "pod_memory_limit") == pod.memory_limit_bytes
            assert "pod_memory_utilization_over_pod_limit" in metrics


def test_emf_mode_writes_the_summary_to_stderr(emf_run: Run) -> None:
    summaries = [line for line in emf_run.stderr.splitlines() if re.match(r"cycle \d/2 summary: ", line)]
    assert len(summaries) == 2, emf_run.stderr[-2000:]
    assert summaries[-1].startswith("cycle 2/2 summary: 40 Fargate nodes: 40 scraped, 0 failed, 0 skipped")
    assert "summary" not in emf_run.stdout


# ---- faults --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_run() -> Run:
    return run_demo("--pods", "50", "--cycles", "2", "--fault-rate", "0.2", "--format", "emf")


def test_fault_rate_last_cycle_emits_valid_emf_for_the_nodes_that_answered(fault_run: Run) -> None:
    assert fault_run.returncode == 0, fault_run.stderr[-3000:]
    pods = simulated_pods(50)
    cycles = cycles_of(emf_lines(fault_run.stdout))
    assert len(cycles) == 2
    last = pod_documents(cycles[-1])
    for doc in last:
        assert_pod_document(doc, pods)
    names = [doc["PodName"] for doc in last]
    assert len(names) == len(set(names))
    logged = run_summaries(fault_run.stderr)
    assert len(logged) == 2
    assert logged[-1]["pods_emitted"] == len(last)
    assert 0 < len(last) < 50


def test_fault_rate_summary_counts_the_failed_nodes_by_reason(fault_run: Run) -> None:
    printed = readable_summaries(fault_run.stderr)
    logged = run_summaries(fault_run.stderr)
    assert len(printed) == 2, fault_run.stderr[-3000:]
    for match, record in zip(printed, logged, strict=True):
        reasons = reasons_of(match)
        assert int(match["discovered"]) == 50
        assert int(match["failed"]) > 0, "a 0.2 fault rate over 50 nodes fails some"
        assert sum(reasons.values()) == int(match["failed"]), match[0]
        counted = int(match["scraped"]) + int(match["failed"]) + int(match["skipped"]) + int(match["gone"])
        assert counted == 50
        assert reasons == record["failures_by_reason"]
        assert int(match["scraped"]) == record["nodes_scraped"]
        assert int(match["documents"]) == record["pods_emitted"]
        # One pod per Fargate node: a node that answered yields its pod's document.
        assert int(match["documents"]) + int(match["without"]) == int(match["scraped"]), match[0]


def test_every_node_is_either_in_the_documents_or_counted_by_reason() -> None:
    """Every node fails: also those that answer 200 with something else than metrics (an HTML page)."""
    run = run_demo("--pods", "50", "--cycles", "1", "--fault-rate", "1", "--format", "emf")
    assert run.returncode == 0, run.stderr[-3000:]
    (record,) = run_summaries(run.stderr)
    documents = pod_documents(cycles_of(emf_lines(run.stdout))[0])
    assert record["pods_emitted"] == len(documents)
    # One pod per Fargate node: a node that answered yields its pod's document (or counts it as a pod
    # without metrics); any other node is counted by reason.
    assert record["pods_emitted"] + record["pods_without_metrics"] == record["nodes_scraped"], record
    assert (
        record["nodes_scraped"] + record["nodes_failed"] + record["nodes_skipped"] + record["nodes_gone"]
        == 50
    )


def test_a_reader_that_stops_early_ends_the_demo_quietly(tmp_path) -> None:
    """`make demo ARGS="--format emf" | head -1`: no traceback when the pipe closes."""
    stderr_path = tmp_path / "stderr"
    command = [sys.executable, "-m", "fargate_insights", "demo", "--interval", INTERVAL]
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--format", "emf", "--pods", "6", "--cycles", "2"],
            cwd=REPO,
            env=demo_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert process.stdout is not None
        json.loads(process.stdout.readline())
        process.stdout.close()  # while the second cycle is still to come, 0.2 s later
        returncode = process.wait(timeout=30)
    assert returncode == 1
    assert "Traceback" not in stderr_path.read_text()


# ---- the user's AWS setup ------------------------------------------------------------------------


def users_aws_setup(tmp_path: Path) -> dict[str, str]:
    """Settings a developer's machine may well have: each one moves or changes the token's STS request."""
    config = tmp_path / "config"
    config.write_text(
        "[default]\nendpoint_url = http://localhost:4566\nregion = eu-west-1\n"
        "[profile work]\nendpoint_url = http://localhost:4566\nuse_fips_endpoint = true\n"
    )
    credentials = tmp_path / "credentials"
    credentials.write_text("[work]\naws_access_key_id = AKIAUSERSOWNKEY00001\naws_secret_access_key = x\n")
    return {
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_PROFILE": "work",
        "AWS_ENDPOINT_URL": "http://localhost:4566",
        "AWS_ENDPOINT_URL_STS": "http://localhost:4566",
        "AWS_USE_FIPS_ENDPOINT": "true",
        "AWS_USE_DUALSTACK_ENDPOINT": "true",
        "AWS_STS_REGIONAL_ENDPOINTS": "legacy",
    }


def test_the_users_aws_setup_does_not_reach_the_demo(tmp_path) -> None:
    """The demo needs no AWS account, and must not be broken by the settings of one (HTTP 401 each cycle)."""
    run = run_demo("--pods", "6", "--cycles", "1", env={**demo_env(), **users_aws_setup(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "summary: 6 Fargate nodes: 6 scraped, 0 failed" in run.stdout, run.stdout[-2000:]


def test_the_demo_environment_is_undone_afterwards(tmp_path, monkeypatch) -> None:
    setup = users_aws_setup(tmp_path)
    for name, setting in setup.items():
        monkeypatch.setenv(name, setting)
    with demo._demo_environment("https://127.0.0.1:1", "Q0E="):
        inside = dict(os.environ)
    assert inside["AWS_CONFIG_FILE"] == inside["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert inside["AWS_EC2_METADATA_DISABLED"] == "true"
    assert inside["AWS_ACCESS_KEY_ID"] == demo.DEMO_ACCESS_KEY
    for name in setup.keys() - {"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}:
        assert name not in inside, name
    assert {name: os.environ.get(name) for name in setup} == setup


# ---- options -------------------------------------------------------------------------------------


def test_defaults_are_a_few_dozen_pods_for_a_few_cycles_a_few_seconds_apart() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args([])
    assert 24 <= args.pods <= 60
    assert 2 <= args.cycles <= 5
    assert 2.0 <= args.interval <= 10.0
    assert args.format == "table"
    assert args.fault_rate == 0.0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--pods", "0"], "--pods and --cycles must be at least 1"),
        (["--cycles", "0"], "--pods and --cycles must be at least 1"),
        (["--fault-rate", "1.5"], "--fault-rate is a share of the nodes: from 0 to 1"),
        (["--interval", "-1"], "--interval must be 0 or more seconds"),
        (["--interval", "inf"], "--interval must be 0 or more seconds, at most 3600"),
        (["--interval", "1e308"], "--interval must be 0 or more seconds, at most 3600"),
        (["--interval", "nan"], "--interval must be 0 or more seconds, at most 3600"),
        (["--timeout", "0"], "--timeout must be more than 0 seconds"),
        (["--timeout", "inf"], "--timeout must be more than 0 seconds, at most 900 (Lambda's limit)"),
        (["--timeout", "nan"], "--timeout must be more than 0 seconds, at most 900 (Lambda's limit)"),
        (["--fault-rate", "nan"], "--fault-rate is a share of the nodes: from 0 to 1"),
    ],
)
def test_unusable_options_exit_2_with_a_message(option, message, capsys) -> None:
    assert main(["demo", *option]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
