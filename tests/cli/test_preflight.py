"""`python -m fargate_insights collect`: the preflight's checks against the simulated cluster.

The command runs in-process through `main()`, with moto serving STS and eks:DescribeCluster, and the
simulator as the API server. A check that fails must say what is wrong and print the fix, and the exit
code must be 1; the checks after it must not run."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from fargate_insights.__main__ import main
from fargate_insights.preflight import RBAC_FIX, RBAC_GROUP, ca_data_of, principal_arn
from fargate_sim import Faults, SimulatedCluster
from fargate_sim.tls import generate

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "preflight"
REGION = "us-west-2"
# moto's mock_aws() replaces the environment's keys with these: the simulator verifies the token with them.
MOTO_KEYS = ("FOOBARKEY", "FOOBARSECRET")
ACCOUNT = "123456789012"
COLUMNS = ["NAMESPACE", "POD", "CPU (m)", "CPU %LIM", "MEMORY", "MEM %LIM", "NET RX/s", "NET TX/s"]
CHECKS = [
    r"AWS credentials: arn:aws:\S+",
    r"eks:DescribeCluster: https://127\.0\.0\.1:\d+",
    r"token accepted by the API server",
    r"RBAC: list nodes, get nodes/proxy",
    r"Fargate nodes found: (\d+)",
    r"cAdvisor read through the API server proxy on (\d+) nodes",
]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of this machine's AWS setup: fake keys, no profile, no metadata service."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_EKS",
        "AWS_ENDPOINT_URL_STS",
        "CLUSTER_NAME",
        "CLUSTER_ENDPOINT",
        "CLUSTER_CA_DATA",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_KEYS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_KEYS[1])
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def aws(aws_env: None) -> Iterator[Callable[[str, SimulatedCluster | None], None]]:
    """moto serves STS and EKS; `register(name, sim)` creates a cluster whose endpoint and CA are sim's."""
    from moto import mock_aws

    with mock_aws():
        import boto3
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.eks.models import eks_backends

        def register(name: str, sim: SimulatedCluster | None) -> None:
            boto3.client("eks", region_name=REGION).create_cluster(
                name=name,
                roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/eks",
                resourcesVpcConfig={"subnetIds": ["subnet-1"]},
            )
            if sim is not None:
                cluster = eks_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[name]
                cluster.endpoint = sim.endpoint
                cluster.certificate_authority = {"data": sim.ca_data}

        yield register


@pytest.fixture
def start() -> Iterator[Callable[..., SimulatedCluster]]:
    """Start a simulated cluster (stopped after the test): by default 6 pods, moto's keys."""
    with ExitStack() as stack:

        def start_cluster(**options: object) -> SimulatedCluster:
            settings: dict[str, object] = {
                "cluster_name": CLUSTER,
                "pods": 6,
                "seed": 5,
                "credentials": MOTO_KEYS,
                "region": REGION,
            }
            settings.update(options)
            return stack.enter_context(SimulatedCluster(**settings))  # type: ignore[arg-type]

        yield start_cluster


def collect(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str, str]:
    code = main(["collect", "--cluster", CLUSTER, "--region", REGION, *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_lines(text: str) -> list[tuple[str, str]]:
    """(label, first line) of each check; a failure's fix lines are indented under it."""
    return [
        (m[1], m[2])
        for m in (re.match(r"^  (ok|WARN|FAIL)\s+(.*)$", line) for line in text.splitlines())
        if m
    ]


def failure_of(text: str) -> str:
    """The failed check and its fix (the indented lines after it), as one text."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  FAIL  "))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("        "):
            break
        block.append(line)
    return "\n".join(line.strip() for line in block)


def assert_checks_then_failure(text: str, passed: int) -> str:
    """The first `passed` checks are ok, the next one failed, and nothing ran after it."""
    checks = check_lines(text)
    assert [label for label, _ in checks] == ["ok"] * passed + ["FAIL"], text
    for (_, line), pattern in zip(checks[:passed], CHECKS, strict=False):
        if pattern.startswith("eks:") and line.startswith("cluster endpoint (given)"):
            continue
        assert re.fullmatch(pattern, line), (pattern, line)
    assert not re.search(r"^NAMESPACE ", text, re.M), "no table after a failed check"
    return failure_of(text)


def table_rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("NAMESPACE"))
    assert re.split(r"\s{2,}", lines[header].strip()) == COLUMNS
    rows = []
    for line in lines[header + 1 :]:
        if not line.strip() or line.startswith("("):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


# ---- success -------------------------------------------------------------------------------------


def test_every_check_passes_and_the_table_is_printed(aws, start, capsys) -> None:
    sim = start()
    aws(CLUSTER, sim)
    code, out, err = collect(capsys)
    assert code == 0, out + err
    assert out.startswith(f"Preflight for EKS cluster {CLUSTER!r}\n")
    checks = check_lines(out)
    assert [label for label, _ in checks] == ["ok"] * len(CHECKS), out
    for (_, line), pattern in zip(checks, CHECKS, strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)
    assert checks[4][1] == f"Fargate nodes found: {len(sim.pods)}"
    assert checks[5][1].endswith(f"on {len(sim.pods)} nodes")
    rows = table_rows(out)
    assert sorted((r[0], r[1]) for r in rows) == sorted((p.namespace, p.name) for p in sim.pods)
    for row in rows:
        assert row[4] != "-", f"memory is known from a single sample ({row})"
        assert (row[5] != "-") == _memory_limited(sim, row[1]), f"MEM %LIM only with a limit ({row})"
    assert "need two samples" in out
    assert sim.stats.by_kind["ssar"] == 2, "one SelfSubjectAccessReview per permission"


def _memory_limited(sim: SimulatedCluster, pod_name: str) -> bool:
    return next(p for p in sim.pods if p.name == pod_name).memory_limit_bytes is not None


def test_emf_format_prints_only_the_documents_on_stdout(aws, start, capsys) -> None:
    sim = start()
    aws(CLUSTER, sim)
    code, out, err = collect(capsys, "--format", "emf")
    assert code == 0, out + err
    documents = [json.loads(line) for line in out.splitlines()]
    assert sorted(d["PodName"] for d in documents) == sorted(p.name for p in sim.pods)
    for doc in documents:
        assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ContainerInsights"
        assert doc["ClusterName"] == CLUSTER
    assert [label for label, _ in check_lines(err)] == ["ok"] * len(CHECKS), "the checks go to stderr"


def test_endpoint_and_ca_data_skip_describe_cluster(aws, start, capsys) -> None:
    sim = start()  # no EKS cluster registered in moto: DescribeCluster would fail
    code, out, err = collect(capsys, "--endpoint", sim.endpoint, "--ca-data", sim.ca_data)
    assert code == 0, out + err
    assert f"  ok    cluster endpoint (given): {sim.endpoint}\n" in out
    assert "DescribeCluster" not in out


def test_a_role_to_assume_is_the_identity_checked(aws, start, capsys) -> None:
    sim = start(credentials=None)  # assumed-role keys are moto's own: accept any signature
    aws(CLUSTER, sim)
    role = f"arn:aws:iam::{ACCOUNT}:role/fargate-insights-collector"
    code, out, err = collect(capsys, "--role-arn", role)
    assert code == 0, out + err
    assert f"  ok    AWS credentials: arn:aws:sts::{ACCOUNT}:assumed-role/fargate-insights-collector/" in out


def test_some_failed_scrapes_are_a_warning_with_reasons(aws, start, capsys) -> None:
    sim = start(pods=8, faults=Faults())
    failing = sim.fargate_nodes[:2]
    for node in failing:
        sim.set_node_fault(node, "http503")
    aws(CLUSTER, sim)
    code, out, err = collect(capsys)
    assert code == 0, out + err
    warning = [line for label, line in check_lines(out) if label == "WARN"]
    assert len(warning) == 1, out
    assert warning[0].startswith("cAdvisor read on 6 of 8 nodes; 2 failed (http_503: 2)"), warning
    assert "ScrapeFailures" in out
    assert len(table_rows(out)) == 6


# ---- failures ------------------------------------------------------------------------------------


def test_no_credentials(aws_env, monkeypatch, capsys) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 0)
    assert failure.startswith("FAIL  no AWS credentials found")
    assert "aws configure" in failure
    assert "AWS_PROFILE" in failure
    assert "AWS_ACCESS_KEY_ID" in failure


def test_no_region(aws_env, monkeypatch, capsys) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    code = main(["collect", "--cluster", CLUSTER])
    out = capsys.readouterr().out
    assert code == 1
    failure = assert_checks_then_failure(out, 0)
    assert failure.startswith("FAIL  no AWS region")
    assert "--region" in failure
    assert "AWS_REGION" in failure and "AWS_DEFAULT_REGION" in failure


def test_aws_region_alone_sets_the_region(aws, start, monkeypatch, capsys) -> None:
    """botocore reads only AWS_DEFAULT_REGION; AWS_REGION (which Lambda and many shells set) counts too."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    sim = start()
    aws(CLUSTER, sim)
    code = main(["collect", "--cluster", CLUSTER])
    out = capsys.readouterr().out
    assert code == 0, out
    assert [label for label, _ in check_lines(out)] == ["ok"] * len(CHECKS), out


def test_a_profile_that_does_not_exist(aws_env, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nosuch")
    for options in ((), ("--region", REGION)):
        code = main(["collect", "--cluster", CLUSTER, *options])
        out = capsys.readouterr().out
        assert code == 1
        failure = assert_checks_then_failure(out, 0)
        assert failure.startswith("FAIL  AWS profile 'nosuch' not found"), failure
        assert "AWS_PROFILE" in failure
        assert "aws configure list-profiles" in failure


def test_a_credential_process_that_fails(aws_env, monkeypatch, tmp_path, capsys) -> None:
    config = tmp_path / "config"
    config.write_text(f"[profile broken]\ncredential_process = /bin/false\nregion = {REGION}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "broken")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 0)
    assert failure.startswith("FAIL  AWS credentials could not be loaded"), failure
    assert "credential_process" in failure
    assert "aws sts get-caller-identity" in failure


def test_sts_out_of_reach_is_a_network_problem_not_expired_credentials(aws, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 0)
    assert failure.startswith("FAIL  cannot reach AWS STS (Could not connect to the endpoint URL"), failure
    assert "HTTPS_PROXY" in failure and "VPC endpoints" in failure
    assert "sso login" not in failure and "refresh" not in failure


def test_the_eks_api_out_of_reach_names_the_preflights_options(aws, monkeypatch, capsys) -> None:
    import fargate_insights.eks_auth

    monkeypatch.setattr(fargate_insights.eks_auth, "DESCRIBE_CLUSTER_ATTEMPTS", 1)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EKS", f"http://127.0.0.1:{_closed_port()}")
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 1)
    assert failure.startswith(f"FAIL  cannot reach the EKS API in {REGION}"), failure
    assert "pass --endpoint and --ca-data" in failure
    assert f"aws eks describe-cluster --name {CLUSTER} --region {REGION}" in failure
    assert "CLUSTER_ENDPOINT" not in failure and "CLUSTER_CA_DATA" not in failure


def test_describe_cluster_throttled_names_the_preflights_options(aws, monkeypatch, capsys) -> None:
    from tests.throttling import throttle_describe_cluster

    sleeps = throttle_describe_cluster(monkeypatch, times=100)  # through botocore's retries, not slept
    code, out, _ = collect(capsys)
    assert code == 1
    assert sleeps  # botocore retried before giving up
    failure = assert_checks_then_failure(out, 1)
    assert failure.startswith(f"FAIL  eks:DescribeCluster failed for {CLUSTER!r} (ThrottlingException)")
    assert "pass --endpoint and --ca-data" in failure
    assert "CLUSTER_ENDPOINT" not in failure and "CLUSTER_CA_DATA" not in failure


def test_unknown_cluster(aws, start, capsys) -> None:
    aws("another-cluster", None)
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 1)
    assert failure.startswith(
        f"FAIL  EKS cluster {CLUSTER!r} not found in region {REGION} (clusters there: another-cluster)"
    ), failure
    assert "check --cluster and --region" in failure
    assert "aws eks list-clusters --region" in failure
    assert "CLUSTER_NAME" not in failure, "the preflight's options, not the function's settings"


def test_wrong_token(aws, start, capsys) -> None:
    sim = start(credentials=("AKIADIFFERENTKEY0001", "a-different-secret"))
    aws(CLUSTER, sim)
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 2)
    assert failure.startswith("FAIL  the API server rejected the token (401 Unauthorized)"), failure
    assert "is not mapped into the cluster" in failure
    assert_no_command_puts_the_caller_in_the_group(failure)
    assert "--role-arn <the function's role ARN>" in failure
    assert "aws-auth" in failure
    assert sim.stats.unauthorized >= 1
    assert sim.stats.list_calls == 0 and sim.stats.proxy_requests == 0


def assert_no_command_puts_the_caller_in_the_group(failure: str) -> None:
    """A person must not join the collector's group: its get nodes/proxy reaches the kubelets' exec."""
    assert "create-access-entry" not in failure and "update-access-entry" not in failure, failure
    assert "--kubernetes-groups" not in failure, failure
    assert f"Do not add yourself to the group {RBAC_GROUP!r}" in failure


def test_wrong_token_for_the_functions_role_names_the_role_as_given(aws, start, capsys) -> None:
    sim = start(credentials=("AKIADIFFERENTKEY0001", "a-different-secret"))  # refuses moto's role keys
    aws(CLUSTER, sim)
    role = f"arn:aws:iam::{ACCOUNT}:role/service-role/fargate-insights-collector"
    code, out, _ = collect(capsys, "--role-arn", role)
    assert code == 1
    failure = assert_checks_then_failure(out, 2)
    first = failure.splitlines()[0]
    assert first.startswith(f"FAIL  the API server rejected the token (401 Unauthorized): {role} is"), first
    assert (
        f"aws eks create-access-entry --cluster-name {CLUSTER} --region {REGION} --principal-arn {role} "
        f"--kubernetes-groups {RBAC_GROUP}"
    ) in failure
    assert "Do not add yourself" not in failure


def test_no_permission_to_list_nodes(aws, start, capsys) -> None:
    sim = start(permissions={"list nodes": False})
    aws(CLUSTER, sim)
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 3)
    assert failure.startswith("FAIL  not allowed: list nodes (for arn:aws:"), failure
    assert "nodes/proxy (for" not in failure.splitlines()[0], "only the denied permission is named"
    assert RBAC_FIX in failure
    assert_no_command_puts_the_caller_in_the_group(failure)
    assert "run this again with --role-arn <the function's role ARN>" in failure, (
        "ran as the user: says how to check the function's role instead"
    )
    assert sim.stats.list_calls == 0, "stops before listing"


def test_no_permission_for_the_node_proxy(aws, start, capsys) -> None:
    sim = start(permissions={"get nodes/proxy": False})
    aws(CLUSTER, sim)
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 3)
    assert failure.startswith("FAIL  not allowed: get nodes/proxy (for arn:aws:"), failure
    assert RBAC_FIX in failure
    assert sim.stats.by_kind["ssar"] == 2
    assert sim.stats.proxy_requests == 0, "stops before scraping"


@pytest.mark.parametrize("path", ["", "service-role/"], ids=["role", "role-with-a-path"])
def test_no_permission_as_the_functions_role_names_the_role_as_given(aws, start, capsys, path) -> None:
    """The assumed-role ARN drops a role's path; the access entry needs the role's ARN as given."""
    sim = start(credentials=None, permissions={"get nodes/proxy": False})
    aws(CLUSTER, sim)
    role = f"arn:aws:iam::{ACCOUNT}:role/{path}fargate-insights-collector"
    code, out, _ = collect(capsys, "--role-arn", role)
    assert code == 1
    failure = assert_checks_then_failure(out, 3)
    assert failure.startswith(f"FAIL  not allowed: get nodes/proxy (for {role})"), failure
    assert f"--principal-arn {role} --kubernetes-groups {RBAC_GROUP}" in failure
    assert "--role-arn" not in failure


def test_rbac_fix_is_a_file_of_this_repository() -> None:
    path = RBAC_FIX.removeprefix("kubectl apply -f ")
    text = (REPO / path).read_text()
    assert f"name: {RBAC_GROUP}" in text
    assert 'resources: ["nodes/proxy"]' in text


def test_no_fargate_nodes(aws, start, capsys) -> None:
    sim = start(pods=0)  # the EC2 nodes remain: they are not Fargate nodes
    assert sim.node_names and not sim.fargate_nodes
    aws(CLUSTER, sim)
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 4)
    assert failure.startswith("FAIL  no Fargate nodes found"), failure
    assert "eks.amazonaws.com/compute-type=fargate" in failure
    assert f"aws eks create-fargate-profile --cluster-name {CLUSTER} --region {REGION}" in failure


def test_every_scrape_refused(aws, start, capsys) -> None:
    """RBAC says yes, yet the node proxy answers 403 everywhere (e.g. a webhook or a stale binding)."""
    sim = start(faults=Faults(rate=1.0, kinds=("http403",)))
    aws(CLUSTER, sim)
    code, out, _ = collect(capsys)
    assert code == 1
    failure = assert_checks_then_failure(out, 5)
    assert "http_403: 6" in failure
    assert RBAC_FIX in failure


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint(aws, capsys) -> None:
    ca_pem, _, _ = generate()
    endpoint = f"https://127.0.0.1:{_closed_port()}"
    code, out, _ = collect(capsys, "--endpoint", endpoint, "--ca-data", ca_data_of(ca_pem))
    assert code == 1
    failure = assert_checks_then_failure(out, 2)
    assert failure.startswith(f"FAIL  cannot reach the API server at {endpoint}"), failure
    assert "refused" in failure.lower()
    assert "private endpoint" in failure
    assert "security group" in failure
    assert "publicAccessCidrs" not in failure  # a limited public endpoint drops, it does not refuse


def test_endpoint_that_never_answers(aws, capsys, monkeypatch) -> None:
    """What an endpoint limited to some CIDRs looks like from outside them: the connection attempts go
    unanswered, and the advice names publicAccessCidrs beside the private endpoint."""
    from fargate_insights import preflight
    from tests.e2e.tls_servers import unanswered_port

    monkeypatch.setattr(preflight, "REVIEW_TIMEOUT", (0.3, 0.3))
    ca_pem, _, _ = generate()
    with unanswered_port() as port:
        endpoint = f"https://127.0.0.1:{port}"
        code, out, _ = collect(capsys, "--endpoint", endpoint, "--ca-data", ca_data_of(ca_pem))
    assert code == 1
    failure = assert_checks_then_failure(out, 2)
    assert failure.startswith(f"FAIL  cannot reach the API server at {endpoint}"), failure
    assert "private endpoint" in failure and "publicAccessCidrs" in failure


def test_wrong_ca(aws, start, capsys) -> None:
    sim = start()
    other_ca, _, _ = generate()
    code, out, _ = collect(capsys, "--endpoint", sim.endpoint, "--ca-data", ca_data_of(other_ca))
    assert code == 1
    failure = assert_checks_then_failure(out, 2)
    assert failure.startswith(f"FAIL  TLS verification of the API server at {sim.endpoint} failed"), failure
    assert "--ca-data" in failure
    assert "certificateAuthority.data" in failure


def test_a_proxy_in_the_environment_is_not_used(aws, start, monkeypatch, capsys) -> None:
    """The function's transport uses no proxy: the checks must not either, or they test another path."""
    proxy = f"http://127.0.0.1:{_closed_port()}"
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    sim = start()
    aws(CLUSTER, sim)
    code, out, err = collect(capsys)
    assert code == 0, out + err
    assert [label for label, _ in check_lines(out)] == ["ok"] * len(CHECKS), out
    assert sim.stats.by_kind["ssar"] == 2


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-in-flight", "0"], "--max-in-flight must be from 1 to 1024"),
        (["--max-in-flight", "-1"], "--max-in-flight must be from 1 to 1024"),
        (["--max-in-flight", "5000"], "--max-in-flight must be from 1 to 1024"),
        (["--timeout", "nan"], "--timeout must be more than 0 and at most 900 seconds"),
        (["--timeout", "inf"], "--timeout must be more than 0 and at most 900 seconds"),
        (["--timeout", "1e308"], "--timeout must be more than 0 and at most 900 seconds"),
        (["--timeout", "0"], "--timeout must be more than 0 and at most 900 seconds"),
        (["--timeout", "-5"], "--timeout must be more than 0 and at most 900 seconds"),
    ],
)
def test_unusable_options_exit_2_with_a_message(aws_env, option, message, capsys) -> None:
    code, out, err = collect(capsys, *option)
    assert code == 2
    assert message in err
    assert out == "", "no check runs"


def test_endpoint_needs_the_ca(aws, capsys) -> None:
    code, out, _ = collect(capsys, "--endpoint", "https://127.0.0.1:1")
    assert code == 1
    failure = assert_checks_then_failure(out, 1)
    assert failure.startswith("FAIL  --endpoint and --ca-data go together")


@pytest.mark.parametrize(
    ("caller", "principal"),
    [
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/collector/session-1",
            f"arn:aws:iam::{ACCOUNT}:role/collector",
        ),
        (f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/r/s", f"arn:aws-cn:iam::{ACCOUNT}:role/r"),
        (f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{ACCOUNT}:user/alice"),
    ],
)
def test_the_access_entry_names_the_role_not_its_session(caller, principal) -> None:
    assert principal_arn(caller) == principal


def test_the_command_line_exits_1_on_a_failed_check(tmp_path) -> None:
    """As a user runs it: a subprocess, no credentials at all."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in ("CLUSTER_ENDPOINT", "CLUSTER_CA_DATA")
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO / "lambda_src"), str(REPO)]),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        HOME=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "-m", "fargate_insights", "collect", "--cluster", CLUSTER, "--region", REGION],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert "  FAIL  no AWS credentials found" in result.stdout
    assert "Traceback" not in result.stderr
