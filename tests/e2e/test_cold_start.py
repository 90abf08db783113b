"""Counter history: across a cold start (a new interpreter, state in S3), pod restarts and resets.

S3 is moto's. The cold start is a subprocess (tests/e2e/run_handler.py) that reaches the simulator
through CLUSTER_ENDPOINT/CLUSTER_CA_DATA and finds in its own moto the state object this process's run
left (moto's server mode, which two processes could share, needs Flask, which is not installed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fargate_sim import ManualClock, SimulatedCluster
from fargate_sim.model import generate_pods

from .conftest import CLUSTER, REGION, check_pod_document, invoke, pod_documents

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "fargate-insights-state"
STATE_KEY = f"state/{CLUSTER}.json"


@pytest.fixture
def sim(credentials):
    clock = ManualClock(float(int(time.time())))
    with SimulatedCluster(
        cluster_name=CLUSTER, pods=8, seed=31, clock=clock, credentials=credentials
    ) as cluster:
        yield cluster


@pytest.fixture
def s3(credentials, monkeypatch):
    """moto's S3 with the state bucket; the function is configured to keep its state there."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        monkeypatch.setenv("STATE_BUCKET", BUCKET)
        monkeypatch.delenv("STATE_KEY", raising=False)
        yield client


def _stored_json(s3, key: str = STATE_KEY) -> dict:
    """The stored state as the JSON it holds (the object is gzip-compressed, and says so)."""
    import gzip

    answer = s3.get_object(Bucket=BUCKET, Key=key)
    assert answer["ContentEncoding"] == "gzip" and answer["ContentType"] == "application/json"
    loaded: dict = json.loads(gzip.decompress(answer["Body"].read()))
    return loaded


def _stored(s3, key: str = STATE_KEY) -> bytes:
    body: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def _cold_start(tmp_path: Path, state: bytes | None) -> tuple[dict, list[str], bytes | None]:
    """One invocation in a new interpreter; S3 there starts with `state` at the state key."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lambda_src"), str(ROOT)])
    command = [sys.executable, str(ROOT / "tests" / "e2e" / "run_handler.py")]
    if state is not None:
        (tmp_path / "state-in.json").write_bytes(state)
        command += [
            "--state-in",
            str(tmp_path / "state-in.json"),
            "--state-out",
            str(tmp_path / "state-out.json"),
        ]
    else:
        env.pop("STATE_BUCKET", None)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    lines = done.stdout.splitlines()
    after = (tmp_path / "state-out.json").read_bytes() if state is not None else None
    return json.loads(lines[-1])["summary"], lines[:-1], after


def _new_pod(sim, seed: int):
    """A pod that was not there before, starting now."""
    pod = generate_pods(1, seed, sim.clock.now(), REGION)[0]
    assert pod.node_name not in sim.node_names and pod.name not in {p.name for p in sim.pods}
    return dataclasses.replace(pod, start_time=sim.clock.now())


def test_cold_start_with_state_in_s3_emits_rates_for_every_pod(
    sim, s3, use_cluster, handler_module, capsys, tmp_path
):
    use_cluster(sim)
    summary, lines = invoke(handler_module, capsys)  # the first execution environment's one run
    assert summary["pods_emitted"] == len(sim.pods)
    assert all("pod_cpu_usage_total" not in doc for doc in pod_documents(lines))  # no history yet
    stored = _stored_json(s3)
    assert stored["version"] == 2 and stored["last_run_ms"] and stored["counters"]

    sim.clock.advance(20.0)
    newcomer = _new_pod(sim, seed=9001)
    sim.add_pod(newcomer)  # started after the previous run: its counters began at zero at its start
    sim.clock.advance(40.0)

    summary, lines, after = _cold_start(tmp_path, _stored(s3))
    assert summary["failures_by_reason"] == {}
    assert summary["pods_emitted"] == len(sim.pods) == 9
    for line in lines:
        json.loads(line)
    documents = {doc["PodName"]: doc for doc in pod_documents(lines)}
    assert set(documents) == {pod.name for pod in sim.pods}
    for pod in sim.pods:
        # CPU and network rates for all, but the newcomer's network, whose first sample this is
        check_pod_document(documents[pod.name], pod, rates=True, born=pod.uid == newcomer.uid)
    history = [json.loads(line) for line in lines if '"counter history loaded"' in line]
    assert history and history[0]["series"] > 0
    assert after is not None  # and it saved its own history, with the newcomer's
    from fargate_insights.state_store import decode

    saved = decode(after)
    assert saved is not None and any(key.startswith(newcomer.uid) for key in saved.counters)


def test_without_state_a_cold_start_has_no_rates(sim, use_cluster, handler_module, capsys, tmp_path):
    """The contrast: what the S3 state buys (and proof that the subprocess really starts cold)."""
    use_cluster(sim)
    invoke(handler_module, capsys)
    sim.clock.advance(60.0)
    summary, lines, _ = _cold_start(tmp_path, None)
    assert summary["pods_emitted"] == len(sim.pods)
    assert all("pod_cpu_usage_total" not in doc for doc in pod_documents(lines))


def test_an_unreadable_state_object_is_overwritten_by_a_warm_writer(s3, caplog):
    """Something wrote garbage over the state after this environment's last save: its next save
    replaces it, instead of trying to create it three times and giving up."""
    from fargate_insights.collector import CollectorState
    from fargate_insights.state_store import S3StateStore, decode

    key = "state/corrupt.json"
    store = S3StateStore(s3, BUCKET, key)
    store.save(CollectorState({"a|cpu": (1.0, 1_000)}, last_run_ms=900))
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x1f\x8b not really gzip")
    store.save(CollectorState({"a|cpu": (2.0, 61_000)}, last_run_ms=60_900))
    saved = decode(_stored(s3, key))
    assert saved is not None and saved.counters == {"a|cpu": (2.0, 61_000)}
    assert "concurrent writers" not in caplog.text


def test_a_state_object_over_the_cap_is_not_read_whole_and_is_overwritten(s3, monkeypatch, caplog):
    """An object larger than any state can be is refused after reading the cap's worth of it (a
    valid, uncompressed version 1 state here, so that only its size refuses it), then replaced."""
    import json

    from fargate_insights import state_store
    from fargate_insights.collector import CollectorState

    key = "state/huge.json"
    counters = {f"pod-{i}|cpu": [1.0, 1_000] for i in range(100)}
    body = json.dumps({"version": 1, "counters": counters, "last_run_ms": 900}).encode()
    assert state_store.decode(body) is not None
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    monkeypatch.setattr(state_store, "MAX_STATE_BYTES", len(body) - 1)
    store = state_store.S3StateStore(s3, BUCKET, key)
    assert store.load() is None
    assert "state object unreadable" in caplog.text
    store.save(CollectorState({"a|cpu": (2.0, 61_000)}, last_run_ms=60_900))
    saved = state_store.decode(_stored(s3, key))
    assert saved is not None and saved.counters == {"a|cpu": (2.0, 61_000)}


def test_overlapping_writers_merge_instead_of_overwriting(s3):
    from fargate_insights.collector import CollectorState
    from fargate_insights.state_store import S3StateStore, decode

    key = "state/overlap.json"
    first, second = S3StateStore(s3, BUCKET, key), S3StateStore(s3, BUCKET, key)
    assert first.load() is None and second.load() is None  # both start before either has written

    first.save(CollectorState({"a|cpu": (1.0, 1_000), "shared|cpu": (5.0, 2_000)}, last_run_ms=900))
    second.save(CollectorState({"b|cpu": (2.0, 1_500), "shared|cpu": (4.0, 1_800)}, last_run_ms=1_400))
    merged = decode(_stored(s3, key))
    assert merged is not None
    assert merged.counters == {"a|cpu": (1.0, 1_000), "b|cpu": (2.0, 1_500), "shared|cpu": (5.0, 2_000)}
    assert merged.last_run_ms == 1_400

    # The first writer's ETag is stale now: its next save merges the second writer's series too.
    first.save(CollectorState({"a|cpu": (3.0, 61_000)}, last_run_ms=60_900))
    merged = decode(_stored(s3, key))
    assert merged is not None
    assert merged.counters == {"a|cpu": (3.0, 61_000), "b|cpu": (2.0, 1_500), "shared|cpu": (5.0, 2_000)}
    assert merged.last_run_ms == 60_900


def test_two_overlapping_environments_keep_the_state_whole(sim, s3, use_cluster, handler_module, capsys):
    """A second execution environment runs and saves while the first is alive; the first saves again."""
    use_cluster(sim)
    invoke(handler_module, capsys)  # environment A: holds the state object's ETag
    warm = handler_module._environment
    sim.clock.advance(60.0)
    newcomer = _new_pod(sim, seed=9002)
    sim.add_pod(newcomer)
    handler_module._environment = None  # environment B: a cold start, loads A's state
    invoke(handler_module, capsys)
    handler_module._environment.kube.close()
    handler_module._environment = warm
    sim.remove_pod(newcomer.name)
    sim.clock.advance(60.0)
    summary, _ = invoke(handler_module, capsys)  # A's ETag is stale: its save must merge, not overwrite
    assert summary["pods_emitted"] == len(sim.pods)

    from fargate_insights.state_store import decode

    state = decode(_stored(s3))
    assert state is not None
    uids = {key.split("|", 1)[0] for key in state.counters}
    assert {pod.uid for pod in sim.pods} | {newcomer.uid} <= uids  # B's newcomer survived A's save
    newest = max(ts for _, ts in state.counters.values())
    assert newest >= (sim.clock.now() - 5) * 1000  # the latest samples are the ones kept


def test_unreachable_state_store_costs_seconds_not_the_run(
    sim, use_cluster, handler_module, capsys, monkeypatch
):
    """S3 that never answers (a function in a VPC without a route to S3): the run still collects."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel accepts the connections; nothing ever answers on them
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("STATE_BUCKET", BUCKET)
        use_cluster(sim)
        lambda_timeout_s = 20.0
        started = time.monotonic()
        summary, lines = invoke(handler_module, capsys, timeout_s=lambda_timeout_s)
        elapsed = time.monotonic() - started
    assert elapsed < 8.0  # loading and saving the state cost seconds, not the function's timeout
    assert summary["pods_emitted"] == len(sim.pods)
    assert summary["failures_by_reason"] == {}
    warnings = {json.loads(line)["message"]: json.loads(line) for line in lines if '"WARNING"' in line}
    assert "state not loaded" in warnings and "state not saved" in warnings
    assert "timeout" in warnings["state not loaded"]["error"].lower()


def test_history_older_than_its_max_age_gives_no_rate(sim, s3, use_cluster, handler_module, capsys):
    """A cold start after an hour without runs: an hour-long average is not this minute's usage."""
    hour_ago = sim.clock.now() - 3600.0
    counters = {
        # An hour ago each pod had used half of what its steady rate gives: its usage was higher since.
        f"{pod.uid}|cpu": [pod.cpu_seconds_at(hour_ago) * 0.5, int(hour_ago * 1000)]
        for pod in sim.pods
    }
    state = {"version": 1, "last_run_ms": int(hour_ago * 1000) - 1000, "counters": counters}
    s3.put_object(Bucket=BUCKET, Key=STATE_KEY, Body=json.dumps(state).encode())
    use_cluster(sim)
    summary, lines = invoke(handler_module, capsys)
    assert summary["pods_emitted"] == len(sim.pods)
    documents = {doc["PodName"]: doc for doc in pod_documents(lines)}
    for pod in sim.pods:
        # No value, or this minute's: never the hour's average.
        check_pod_document(documents[pod.name], pod, rates=False)
    sim.clock.advance(60.0)
    _, lines = invoke(handler_module, capsys)
    documents = {doc["PodName"]: doc for doc in pod_documents(lines)}
    for pod in sim.pods:
        check_pod_document(documents[pod.name], pod, rates=True)  # and the next minute, rates again


def test_a_state_object_with_values_json_cannot_write_back_does_not_fail_the_run(
    sim, s3, use_cluster, handler_module, capsys
):
    """NaN, Infinity and booleans in the stored state (json.loads() reads them): dropped on load."""
    now_ms = int(sim.clock.now() * 1000)
    pod = sim.pods[0]
    body = (
        '{"version":1,"last_run_ms":' + str(now_ms - 60_000) + ',"counters":{'
        f'"{pod.uid}|cpu":[NaN,{now_ms + 3_600_000}],'
        f'"{pod.uid}|rx|x|eth0":[Infinity,{now_ms - 60_000}],'
        f'"{pod.uid}|tx|x|eth0":[true,{now_ms - 60_000}],'
        f'"{pod.uid}|tx|y|eth0":[1.0,false]'
        "}}"
    )
    s3.put_object(Bucket=BUCKET, Key=STATE_KEY, Body=body.encode())
    use_cluster(sim)
    summary, lines = invoke(handler_module, capsys)
    assert summary["pods_emitted"] == len(sim.pods)
    assert not [line for line in lines if "state not saved" in line]
    stored = _stored_json(s3)  # strict JSON again, and only this run's samples
    assert all(isinstance(value, float) and value == value for value, _ in stored["counters"].values())
    assert all(ts <= now_ms for _, ts in stored["counters"].values())


# -- Counters that go down, pods that come back -----------------------------------------------------


def test_counter_reset_gives_no_value_that_cycle_never_a_negative_one(
    sim, use_cluster, handler_module, capsys
):
    use_cluster(sim)
    invoke(handler_module, capsys)
    sim.clock.advance(60.0)
    invoke(handler_module, capsys)
    victim = sim.pods[1]
    # The sandbox and the pod cgroup restart under the same pod UID: every counter starts from 0 again.
    victim.start_time = sim.clock.now() + 10.0
    sim.clock.advance(60.0)
    summary, lines = invoke(handler_module, capsys)
    assert summary["failures_by_reason"] == {}
    documents = {doc["PodName"]: doc for doc in pod_documents(lines)}
    doc = documents[victim.name]
    for name in ("pod_cpu_usage_total", "pod_cpu_utilization_over_pod_limit"):
        assert name not in doc  # the counter went down: no value this cycle
    for name in ("pod_network_rx_bytes", "pod_network_tx_bytes"):
        assert name not in doc
    check_pod_document(doc, victim, rates=False)  # every value left is non-negative and right
    for pod in sim.pods:
        if pod is not victim:
            check_pod_document(documents[pod.name], pod)

    sim.clock.advance(60.0)  # the cycle after: rates again, from the new counters
    _, lines = invoke(handler_module, capsys)
    check_pod_document({d["PodName"]: d for d in pod_documents(lines)}[victim.name], victim)


def test_recreated_pod_is_a_new_series_with_a_rate_since_its_start(sim, use_cluster, handler_module, capsys):
    use_cluster(sim)
    invoke(handler_module, capsys)
    victim = sim.pods[3]
    sim.clock.advance(20.0)
    fresh = sim.recreate_pod(victim.name)  # same name, new UID, counters from zero at its start
    sim.clock.advance(40.0)
    _, lines = invoke(handler_module, capsys)
    documents = {doc["PodName"]: doc for doc in pod_documents(lines)}
    doc = documents[victim.name]
    assert fresh.uid != victim.uid
    # Never a rate across the two pods' counters (that would be negative, or near zero); the new pod
    # started after the previous run, so its CPU counter's whole life is a rate.
    check_pod_document(doc, fresh, born=True)
    for pod in sim.pods:
        if pod.uid != fresh.uid:
            check_pod_document(documents[pod.name], pod)
    sim.clock.advance(60.0)
    _, lines = invoke(handler_module, capsys)
    documents = {doc["PodName"]: doc for doc in pod_documents(lines)}
    check_pod_document(documents[victim.name], fresh, rates=True)  # and its network from its second sample


def test_a_configuration_error_logs_the_error_and_no_powertools_warning(credentials, tmp_path):
    """In a fresh interpreter, as in Lambda: pytest resets warning filters between tests."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lambda_src"), str(ROOT)])
    env.pop("CLUSTER_NAME", None)
    command = [sys.executable, str(ROOT / "tests" / "e2e" / "run_handler.py")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    errors = [json.loads(line) for line in done.stdout.splitlines() if '"collection failed"' in line]
    assert len(errors) == 1 and "CLUSTER_NAME is not set" in errors[0]["error"]
    assert "No application metrics" not in done.stdout + done.stderr
