"""What one run does when parts of the cluster misbehave, end to end against the simulator.

Each test asserts both sides: what was emitted for the healthy pods (every one of them, with valid EMF
and the right values) and what was reported for the failed part (the run summary's failures by reason,
the ScrapeFailures/NodesSkipped health metrics), and whether the run succeeds or raises.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time

import pytest

from fargate_sim import ManualClock, SimulatedCluster
from fargate_sim.faults import FAULT_KINDS, Faults
from tests.throttling import throttle_describe_cluster

from .conftest import (
    CLUSTER,
    LambdaContext,
    check_pod_document,
    health_document,
    invoke,
    pod_documents,
)

# The reason each proxy fault is counted under in the run summary (`failures_by_reason`).
REASONS = {
    "http500": "http_500",
    "http502": "http_502",
    "http503": "http_503",
    "http403": "http_403",
    "timeout": "timeout",
    "reset": "connection",
    "truncated_gzip": "truncated",
    "cut_chunked": "connection",
    "not_metrics": "not_metrics",
    "huge": "too_large",
}
REQUEST_TIMEOUT_S = "0.3"


def _clock() -> ManualClock:
    # Near the real time: a sample timestamp far from the function's clock is (rightly) not trusted.
    return ManualClock(float(int(time.time())))


@pytest.fixture
def sim(credentials):
    faults = Faults(timeout_s=3.0, huge_bytes=20 * 1024 * 1024)
    with SimulatedCluster(
        cluster_name=CLUSTER, pods=6, seed=21, clock=_clock(), credentials=credentials, faults=faults
    ) as cluster:
        yield cluster


def _summaries(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if '"run summary"' in line]


def test_every_fault_kind_is_covered():
    assert set(REASONS) | {"garbage", "http404"} == set(FAULT_KINDS)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_one_failing_node_costs_only_its_pod(kind, sim, use_cluster, handler_module, capsys, monkeypatch):
    # The timeout is for a whole scrape: the huge answer, generated and gzipped by the simulator as it
    # streams, gets more time than a stalled one needs to be cut, so that it ends as too large.
    monkeypatch.setenv("REQUEST_TIMEOUT_SECONDS", "2.0" if kind == "huge" else REQUEST_TIMEOUT_S)
    use_cluster(sim)
    invoke(handler_module, capsys)  # every pod has a sample now
    victim = sim.pods[2]
    healthy = [pod for pod in sim.pods if pod is not victim]
    sim.set_node_fault(victim.node_name, kind)
    sim.clock.advance(60.0)

    started = time.monotonic()
    summary, lines = invoke(handler_module, capsys)
    assert time.monotonic() - started < 3.0  # a hanging node costs the request timeout, not the run

    for line in lines:
        json.loads(line)  # logs and EMF alike: every line is JSON
    documents = {doc["PodName"]: doc for doc in pod_documents(lines)}
    for pod in healthy:
        check_pod_document(documents[pod.name], pod)
    health = health_document(lines)
    assert health["NodesDiscovered"] == len(sim.pods)
    assert sim.stats.faults[kind] >= 1

    if kind == "http404":
        # The API server no longer knows the node: its pod ended. Churn, not a failure.
        assert set(documents) == {pod.name for pod in healthy}
        assert summary["failures_by_reason"] == {}
        assert summary["nodes_gone"] == 1
        assert health["ScrapeFailures"] == 0
        assert health["NodesGone"] == 1
        assert health["PodsEmitted"] == len(healthy)
        return

    if kind == "garbage":
        # Malformed lines and random bytes mixed into a real payload are ignored, never turned into
        # values: the pod is still emitted, with only correct values. (Only malformed lines among the
        # few the collector reads are counted in `malformed_lines`; the rest are skipped unparsed.)
        assert set(documents) == {pod.name for pod in sim.pods}
        check_pod_document(documents[victim.name], victim, rates=False)
        assert summary["failures_by_reason"] == {}
        assert health["ScrapeFailures"] == 0
        assert health["PodsEmitted"] == len(sim.pods)
        return

    reason = REASONS[kind]
    assert set(documents) == {pod.name for pod in healthy}
    assert summary["failures_by_reason"] == {reason: 1}
    assert summary["nodes_failed"] == 1
    assert summary["nodes_scraped"] == len(healthy)
    assert summary["nodes_skipped"] == 0
    assert summary["pods_emitted"] == len(healthy)
    assert health["ScrapeFailures"] == 1
    assert health["NodesScraped"] == len(healthy)
    assert health["PodsEmitted"] == len(healthy)
    warnings = [json.loads(line) for line in lines if '"node scrape failed"' in line]
    assert [(w["level"], w["node"], w["reason"]) for w in warnings] == [("WARNING", victim.node_name, reason)]
    assert _summaries(lines)[0]["level"] == "WARNING"

    # The node's history survives its failure: its next good scrape has exact rates again.
    sim.set_node_fault(victim.node_name, None)
    sim.clock.advance(60.0)
    summary, lines = invoke(handler_module, capsys)
    assert summary["failures_by_reason"] == {}
    check_pod_document({d["PodName"]: d for d in pod_documents(lines)}[victim.name], victim)


# -- A run raises only when nothing could be collected, with a message that says what to fix ----------


def _failed_run(handler_module, capsys, match: str, timeout_s: float = 30.0) -> list[str]:
    started = time.monotonic()
    with pytest.raises(Exception, match=match) as raised:
        handler_module.lambda_handler({}, LambdaContext(timeout_s=timeout_s))
    assert time.monotonic() - started < 5.0
    lines = capsys.readouterr().out.splitlines()
    assert pod_documents(lines) == []
    errors = [json.loads(line) for line in lines if '"collection failed"' in line]
    assert len(errors) == 1 and errors[0]["level"] == "ERROR"
    assert errors[0]["error"] == str(raised.value)
    return lines


def test_no_credentials(sim, use_cluster, handler_module, capsys, monkeypatch, tmp_path):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    use_cluster(sim)
    _failed_run(handler_module, capsys, r"No AWS credentials found to sign the EKS token.*AWS_PROFILE")
    assert sim.stats.requests == 0


def test_not_allowed_to_list_nodes(credentials, use_cluster, handler_module, capsys):
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=3,
        clock=_clock(),
        credentials=credentials,
        permissions={"list nodes": False},
    ) as sim:
        use_cluster(sim)
        lines = _failed_run(
            handler_module, capsys, r"may not list nodes: apply infra/rbac.yaml.*HTTP 403.*cannot list"
        )
        assert sim.stats.forbidden == 1
    health = health_document(lines)
    assert health["ScrapeFailures"] == 1  # the run's own failure, so the alarm sees it too


def test_not_allowed_to_proxy_to_any_node(credentials, use_cluster, handler_module, capsys):
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=3,
        clock=_clock(),
        credentials=credentials,
        permissions={"get nodes/proxy": False},
    ) as sim:
        use_cluster(sim)
        _failed_run(
            handler_module,
            capsys,
            r"Every node scrape was refused \(http_403: 3\).*`get` on `nodes/proxy`.*infra/rbac.yaml",
        )


def test_api_server_unreachable(use_cluster, handler_module, capsys, monkeypatch):
    from fargate_sim.tls import generate

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    import base64

    monkeypatch.setenv("CLUSTER_ENDPOINT", f"https://127.0.0.1:{port}")
    monkeypatch.setenv("CLUSTER_CA_DATA", base64.b64encode(generate()[0].encode()).decode())
    _failed_run(handler_module, capsys, r"could not be reached: check the endpoint.*security groups")


@pytest.mark.parametrize("where", ["connect", "handshake"])
def test_api_server_that_never_answers(where, use_cluster, handler_module, capsys, monkeypatch):
    """An endpoint limited to some CIDRs drops the connection attempts from outside them (`connect`); a
    server can also take the connection and then say nothing (`handshake`). Both are a timeout, with the
    fixes for a private endpoint and for a limited public one."""
    import base64

    from fargate_sim.tls import generate

    from .tls_servers import unanswered_port

    monkeypatch.setenv("REQUEST_TIMEOUT_SECONDS", REQUEST_TIMEOUT_S)
    monkeypatch.setenv("CLUSTER_CA_DATA", base64.b64encode(generate()[0].encode()).decode())
    with contextlib.ExitStack() as stack:
        if where == "connect":
            port = stack.enter_context(unanswered_port())
        else:
            silent = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
            port = silent.getsockname()[1]
        monkeypatch.setenv("CLUSTER_ENDPOINT", f"https://127.0.0.1:{port}")
        _failed_run(
            handler_module,
            capsys,
            r"did not answer in time: .*cluster's VPC.*publicAccessCidrs",
            timeout_s=10.0,
        )


def test_token_not_accepted(credentials, use_cluster, handler_module, capsys):
    # The simulator trusts other keys than the function signs with: every request is 401.
    with SimulatedCluster(
        cluster_name=CLUSTER, pods=3, clock=_clock(), credentials=("AKIAOTHERKEY", "other-secret")
    ) as sim:
        use_cluster(sim)
        _failed_run(handler_module, capsys, r"did not accept the function's IAM identity: .*access entry")
        assert sim.stats.unauthorized == 2  # the first answer, and the one after a fresh token


# -- Retries, renewals and the deadline -------------------------------------------------------------


def _all_pods_emitted(sim, summary: dict, lines: list[str]) -> None:
    assert summary["failures_by_reason"] == {}
    assert summary["nodes_scraped"] == len(sim.pods)
    documents = {doc["PodName"]: doc for doc in pod_documents(lines)}
    assert set(documents) == {pod.name for pod in sim.pods}
    for pod in sim.pods:
        check_pod_document(documents[pod.name], pod, rates=False)


def test_list_throttled_is_retried_after_retry_after(credentials, use_cluster, handler_module, capsys):
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=3,
        clock=_clock(),
        credentials=credentials,
        faults=Faults(list_throttle=2, retry_after_s=1),
    ) as sim:
        use_cluster(sim)
        started = time.monotonic()
        summary, lines = invoke(handler_module, capsys)
        assert time.monotonic() - started >= 2.0  # waited as told, twice
        assert sim.stats.throttled == 2
        assert sim.stats.list_calls == 3
        _all_pods_emitted(sim, summary, lines)


def test_list_throttled_past_the_deadline_fails_fast(credentials, use_cluster, handler_module, capsys):
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=3,
        clock=_clock(),
        credentials=credentials,
        faults=Faults(list_throttle=100, retry_after_s=20),
    ) as sim:
        use_cluster(sim)
        _failed_run(handler_module, capsys, r"kept throttling the LIST.*HTTP 429", timeout_s=5.0)
        assert sim.stats.list_calls == 1  # no waiting beyond the deadline


def test_unauthorized_renews_the_token_once(credentials, use_cluster, handler_module, capsys):
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=3,
        clock=_clock(),
        credentials=credentials,
        faults=Faults(unauthorized_first=1),
    ) as sim:
        use_cluster(sim)
        summary, lines = invoke(handler_module, capsys)
        assert sim.stats.unauthorized == 1
        assert sim.stats.list_calls == 1  # the 401 came before the list was served
        _all_pods_emitted(sim, summary, lines)


def test_near_the_deadline_emits_what_it_has(credentials, use_cluster, handler_module, capsys, monkeypatch):
    monkeypatch.setenv("MAX_IN_FLIGHT", "2")
    with SimulatedCluster(
        cluster_name=CLUSTER, pods=16, seed=5, clock=_clock(), credentials=credentials, latency_s=0.4
    ) as sim:
        use_cluster(sim)
        lambda_timeout_s = 2.5
        started = time.monotonic()
        summary, lines = invoke(handler_module, capsys, timeout_s=lambda_timeout_s)
        elapsed = time.monotonic() - started
    assert elapsed < lambda_timeout_s - 0.5  # returned with time to spare, no exception
    assert summary["nodes_discovered"] == len(sim.pods)
    assert summary["nodes_skipped"] > 0
    assert summary["nodes_scraped"] > 0
    # A node the run had no time for is skipped, not failed. (On a starved CPU a request can still time
    # out before the deadline: that one is a failure, and the only kind allowed.)
    assert set(summary["failures_by_reason"]) <= {"timeout"}
    failed = sum(summary["failures_by_reason"].values())
    assert summary["nodes_scraped"] + summary["nodes_skipped"] + failed == len(sim.pods)
    assert summary["pods_emitted"] == summary["nodes_scraped"]
    documents = pod_documents(lines)
    assert len(documents) == summary["nodes_scraped"]
    by_name = {pod.name: pod for pod in sim.pods}
    for doc in documents:
        check_pod_document(doc, by_name[doc["PodName"]], rates=False)
    health = health_document(lines)
    assert health["NodesSkipped"] == summary["nodes_skipped"]
    assert health["ScrapeFailures"] == 0
    assert _summaries(lines)[0]["level"] == "WARNING"


# -- eks:DescribeCluster throttled ------------------------------------------------------------------


def test_describe_cluster_throttled_is_retried_with_backoff(
    sim, describe_cluster_serves, handler_module, capsys, monkeypatch
):
    describe_cluster_serves(sim)
    sleeps = throttle_describe_cluster(monkeypatch, times=3)
    summary, lines = invoke(handler_module, capsys, timeout_s=50.0)  # the stack's default timeout
    assert len(sleeps) == 3  # three throttled attempts, each followed by a back-off, then the answer
    assert all(0 <= s <= 2**i for i, s in enumerate(sleeps))  # jittered exponential back-off
    _all_pods_emitted(sim, summary, lines)


def test_describe_cluster_throttled_for_good_fails_with_a_fix(
    sim, describe_cluster_serves, handler_module, capsys, monkeypatch
):
    describe_cluster_serves(sim)
    sleeps = throttle_describe_cluster(monkeypatch, times=100)
    _failed_run(
        handler_module,
        capsys,
        r"eks:DescribeCluster failed for 'e2e': ThrottlingException after 4 attempts.*CLUSTER_ENDPOINT",
        timeout_s=50.0,
    )
    assert len(sleeps) == 3  # four attempts in all, with a back-off before each retry
    assert sum(sleeps) <= 1 + 2 + 4  # the back-off is bounded: well inside the function's timeout
    assert sim.stats.requests == 0


@pytest.mark.parametrize(("timeout_s", "attempts"), [(30.0, 3), (20.0, 2), (12.0, 1)])
def test_describe_cluster_tries_only_what_fits_in_the_functions_time(
    sim, describe_cluster_serves, handler_module, capsys, monkeypatch, timeout_s, attempts
):
    """Every attempt may take its connect and read timeouts (3 + 5 s) and the back-offs between them:
    a shorter function timeout gets fewer attempts, so the error is logged before Lambda stops it."""
    describe_cluster_serves(sim)
    sleeps = throttle_describe_cluster(monkeypatch, times=100)
    plural = "s" if attempts > 1 else ""
    _failed_run(
        handler_module,
        capsys,
        rf"ThrottlingException after {attempts} attempt{plural}:",
        timeout_s=timeout_s,
    )
    assert len(sleeps) == attempts - 1


def test_node_gone_between_list_and_scrape(sim, use_cluster, handler_module, capsys, monkeypatch):
    """The pod ends (and its Fargate node with it) after the list was served, before its scrape."""
    use_cluster(sim)
    invoke(handler_module, capsys)
    victim = sim.pods[4]
    kube = handler_module._environment.kube
    listed = kube.list_fargate_nodes

    def list_then_remove(deadline: float):
        nodes = listed(deadline)
        sim.remove_pod(victim.name)
        return nodes

    monkeypatch.setattr(kube, "list_fargate_nodes", list_then_remove)
    sim.clock.advance(60.0)
    summary, lines = invoke(handler_module, capsys)
    documents = {doc["PodName"]: doc for doc in pod_documents(lines)}
    assert set(documents) == {pod.name for pod in sim.pods}  # everyone but the victim
    for pod in sim.pods:
        check_pod_document(documents[pod.name], pod)
    # Pods end all the time on a busy cluster: a node gone since the list is not a scrape failure.
    assert summary["failures_by_reason"] == {}
    assert summary["nodes_gone"] == 1
    health = health_document(lines)
    assert health["ScrapeFailures"] == 0
    assert health["NodesGone"] == 1
    notice = next(json.loads(line) for line in lines if '"node gone before its scrape"' in line)
    assert notice["node"] == victim.node_name and notice["level"] == "INFO"
    assert _summaries(lines)[0]["level"] == "INFO"


def test_a_bug_while_scraping_one_node_costs_that_node_only(
    sim, use_cluster, handler_module, capsys, monkeypatch
):
    """An exception no scrape step expects fails its node and is reported; the run does not wait for it."""
    from fargate_insights import collector

    use_cluster(sim)
    invoke(handler_module, capsys)
    real_extract = collector.extract
    calls = []

    def extract_failing_once(payload: bytes):
        calls.append(payload)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real_extract(payload)

    monkeypatch.setattr(collector, "extract", extract_failing_once)
    sim.clock.advance(60.0)
    started = time.monotonic()
    summary, lines = invoke(handler_module, capsys, timeout_s=30.0)
    assert time.monotonic() - started < 10  # not held until the run's deadline
    assert summary["failures_by_reason"] == {"unexpected": 1}
    assert summary["nodes_scraped"] == len(sim.pods) - 1
    assert len(pod_documents(lines)) == len(sim.pods) - 1
    failure = next(json.loads(line) for line in lines if '"node scrape failed"' in line)
    assert failure["reason"] == "unexpected" and "RuntimeError: a bug" in failure["error"]


def test_a_bug_while_handling_one_pod_costs_that_pods_document_only(
    sim, use_cluster, handler_module, capsys, monkeypatch
):
    """An exception while computing, building or writing one pod's document: the others are written,
    the state and health are still reported."""
    from fargate_insights import collector

    use_cluster(sim)
    real_compute = collector.compute
    calls = []

    def compute_failing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("a bug")
        return real_compute(*args, **kwargs)

    monkeypatch.setattr(collector, "compute", compute_failing_once)
    summary, lines = invoke(handler_module, capsys)
    assert summary["failures_by_reason"] == {"unexpected": 1}
    assert summary["pods_emitted"] == len(sim.pods) - 1
    assert len(pod_documents(lines)) == len(sim.pods) - 1
    assert health_document(lines)["PodsEmitted"] == len(sim.pods) - 1
    failure = next(json.loads(line) for line in lines if '"pod document failed"' in line)
    assert "RuntimeError: a bug" in failure["error"]


def test_an_unexpected_error_is_still_logged_and_reported_as_a_failed_run(
    sim, use_cluster, handler_module, capsys, monkeypatch
):
    from fargate_insights import collector

    use_cluster(sim)

    def broken_run(self, deadline):  # type: ignore[no-untyped-def]
        raise KeyError("a bug")

    monkeypatch.setattr(collector.Collector, "run", broken_run)
    with pytest.raises(KeyError):
        handler_module.lambda_handler({}, LambdaContext())
    lines = capsys.readouterr().out.splitlines()
    error = next(json.loads(line) for line in lines if '"collection failed"' in line)
    assert error["error_type"] == "KeyError" and "unexpected error: KeyError" in error["error"]
    assert health_document(lines)["ScrapeFailures"] == 1


def test_the_state_save_never_runs_past_the_functions_timeout(
    credentials, use_cluster, handler_module, capsys, monkeypatch
):
    """One node hangs, so the collection takes all its time; S3 never answers. The save must not start
    a call it cannot finish: the summary and health metrics come before Lambda's timeout."""
    monkeypatch.setenv("REQUEST_TIMEOUT_SECONDS", "9")
    faults = Faults(timeout_s=60.0)
    with (
        SimulatedCluster(
            cluster_name=CLUSTER, pods=4, seed=3, clock=_clock(), credentials=credentials, faults=faults
        ) as sim,
        socket.socket() as silent,
    ):
        sim.set_node_fault(sim.pods[0].node_name, "timeout")
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel accepts the connections; nothing ever answers on them
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("STATE_BUCKET", "state")
        use_cluster(sim)
        lambda_timeout_s = 12.0
        started = time.monotonic()
        summary, lines = invoke(handler_module, capsys, timeout_s=lambda_timeout_s)
        elapsed = time.monotonic() - started
    assert elapsed < lambda_timeout_s
    assert summary["pods_emitted"] == len(sim.pods) - 1
    assert health_document(lines)["PodsEmitted"] == len(sim.pods) - 1
    assert any('"run summary"' in line for line in lines)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        (
            "CLUSTER_CA_DATA",
            "-----BEGIN CERTIFICATE-----\nMIIBnotreallyacert\n-----END CERTIFICATE-----\n",
            "PEM",
        ),
        ("CLUSTER_ENDPOINT", "https://127.0.0.1:443x", "not an https URL"),
    ],
    ids=["a-certificate-that-is-not-one", "a-port-that-is-not-a-number"],
)
def test_configuration_that_cannot_be_used_fails_with_a_fix(
    sim, use_cluster, handler_module, capsys, monkeypatch, setting, value, message
):
    import base64

    use_cluster(sim)
    if setting == "CLUSTER_CA_DATA":
        value = base64.b64encode(value.encode()).decode()
    monkeypatch.setenv(setting, value)
    lines = _failed_run(handler_module, capsys, message)  # raised, and logged as "collection failed"
    error = next(json.loads(line) for line in lines if '"collection failed"' in line)
    assert error["error_type"] == "ConfigurationError" and "describe-cluster" in error["error"]


def test_a_cluster_recreated_under_the_same_name_is_found_again(
    credentials, describe_cluster_serves, handler_module, capsys
):
    """A warm environment described the cluster once; once its endpoint stops answering, the next run
    describes it again and follows it (while the counter history held in memory is kept)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.eks.models import eks_backends

    from .conftest import REGION

    clock = _clock()
    old = SimulatedCluster(cluster_name=CLUSTER, pods=2, seed=1, clock=clock, credentials=credentials).start()
    describe_cluster_serves(old)
    summary, _ = invoke(handler_module, capsys)
    assert summary["pods_emitted"] == 2
    state = handler_module._environment.state
    old.stop()
    with SimulatedCluster(cluster_name=CLUSTER, pods=2, seed=2, clock=clock, credentials=credentials) as new:
        cluster = eks_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[CLUSTER]
        cluster.endpoint, cluster.certificate_authority = new.endpoint, {"data": new.ca_data}
        with pytest.raises(Exception, match="could not be reached"):
            handler_module.lambda_handler({}, LambdaContext())
        summary, _ = invoke(handler_module, capsys)
        assert summary["pods_emitted"] == 2 and new.stats.requests > 0
        assert handler_module._environment.state is state


@pytest.mark.parametrize("expirations", [1, 2])
def test_an_expired_continue_token_takes_the_list_again_once(
    credentials, use_cluster, handler_module, capsys, expirations
):
    """etcd compacted the version a paged list was taken at: the API server answers 410 Expired to its
    next page. The list is taken again from its start, once; a second expiry fails the run."""
    faults = Faults(expire_continue=expirations)
    with SimulatedCluster(
        cluster_name=CLUSTER, pods=5, clock=_clock(), credentials=credentials, faults=faults, max_page_size=2
    ) as sim:
        use_cluster(sim)
        if expirations == 1:
            summary, lines = invoke(handler_module, capsys)
            _all_pods_emitted(sim, summary, lines)
            assert sim.stats.list_calls == 1 + 1 + 3  # the first page, the expired one, the list again
        else:
            lines = _failed_run(handler_module, capsys, "Could not list Fargate nodes")
            error = next(json.loads(line) for line in lines if '"collection failed"' in line)
            assert "410" in error["error"] and "twice" in error["error"]
        assert sim.stats.expired_continues == expirations


def test_a_problem_shared_by_many_nodes_writes_a_bounded_number_of_lines(
    credentials, use_cluster, handler_module, capsys, monkeypatch
) -> None:
    """Every node failing the same way writes NODE_LINES_PER_KIND lines of it, not one a node, for each
    reason and in every run; the summary still counts every failure, and how many lines were left out."""
    from fargate_insights.collector import NODE_LINES_PER_KIND

    monkeypatch.setenv("REQUEST_TIMEOUT_SECONDS", REQUEST_TIMEOUT_S)
    failing = {"http500": NODE_LINES_PER_KIND + 3, "http503": NODE_LINES_PER_KIND + 1}
    pods = sum(failing.values()) + 2
    with SimulatedCluster(
        cluster_name=CLUSTER, pods=pods, seed=4, clock=_clock(), credentials=credentials
    ) as sim:
        use_cluster(sim)
        victims = iter(sim.pods)
        for kind, count in failing.items():
            for _ in range(count):
                sim.set_node_fault(next(victims).node_name, kind)
        for _ in range(2):  # the second run writes its own share again: the count is per run
            summary, lines = invoke(handler_module, capsys)
            assert summary["failures_by_reason"] == {
                "http_500": failing["http500"],
                "http_503": failing["http503"],
            }
            assert summary["node_lines_not_logged"] == {
                "failure:http_500": failing["http500"] - NODE_LINES_PER_KIND,
                "failure:http_503": failing["http503"] - NODE_LINES_PER_KIND,
            }
            warnings = [json.loads(line) for line in lines if '"node scrape failed"' in line]
            assert (
                sorted(w["reason"] for w in warnings)
                == ["http_500"] * NODE_LINES_PER_KIND + ["http_503"] * NODE_LINES_PER_KIND
            )
            assert len(pod_documents(lines)) == 2  # the two healthy pods
            assert health_document(lines)["ScrapeFailures"] == pods - 2
            sim.clock.advance(60.0)
