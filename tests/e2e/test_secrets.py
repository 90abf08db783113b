"""Secrets stay secret even at DEBUG, and TLS to the API server cannot be switched off.

A full run (DescribeCluster, token, a 401 and a renewal, the node list, scrapes with a failing node,
the S3 state) with every logger at DEBUG, botocore's and the API transport's included: neither stdout, stderr nor
any log record may contain the bearer token or any part that would let someone rebuild it, the secret
key, the session token (which Lambda's credentials always have), a request's signature, or private key
material.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from fargate_sim import ManualClock, SimulatedCluster
from fargate_sim.faults import Faults
from fargate_sim.tls import generate

from .conftest import CLUSTER, REGION, SECRET_KEY, LambdaContext, check_pod_document, invoke, pod_documents

SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENvalue/with+base64chars=="  # a fake

DEBUG_LOGGERS = (
    "",
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "fargate_insights",
    "aws_lambda_powertools",
)


@pytest.fixture
def sim(credentials):
    clock = ManualClock(float(int(time.time())))
    faults = Faults(unauthorized_first=1)
    with SimulatedCluster(
        cluster_name=CLUSTER, pods=4, seed=41, clock=clock, credentials=credentials, faults=faults
    ) as cluster:
        yield cluster


@pytest.fixture
def everything_at_debug(handler_module, caplog):
    """Every logger at DEBUG: the function's own (Powertools, to stdout) and every library's (caplog)."""
    own = logging.getLogger("fargate_insights")
    levels = (handler_module.logger.log_level, own.level)
    handler_module.logger.setLevel("DEBUG")
    own.setLevel(logging.DEBUG)
    for name in DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    yield caplog
    handler_module.logger.setLevel(levels[0])
    own.setLevel(levels[1])


def _everything_written(capsys, caplog) -> str:
    out, err = capsys.readouterr()
    records = [
        f"{record.name} {record.levelname} {record.getMessage()} {record.__dict__!r}"
        for record in caplog.records
    ]
    return "\n".join([out, err, *records])


def test_no_secret_in_any_output_at_debug(
    sim, describe_cluster_serves, handler_module, everything_at_debug, capsys, monkeypatch
):
    import boto3

    # Lambda's credentials always carry a session token: it is a secret too.
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    describe_cluster_serves(sim)  # moto's EKS: the endpoint and CA come from DescribeCluster
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="state", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    monkeypatch.setenv("STATE_BUCKET", "state")
    sim.set_node_fault(sim.pods[0].node_name, "http500")

    handler_module.lambda_handler({}, LambdaContext())
    sim.clock.advance(60.0)
    handler_module.lambda_handler({}, LambdaContext())
    written = _everything_written(capsys, everything_at_debug)

    # The run did everything it should, and logged at DEBUG (or this test would prove nothing).
    assert sim.stats.unauthorized == 1 and sim.stats.faults["http500"] == 2
    assert len(pod_documents(written.splitlines())) == 2 * (len(sim.pods) - 1)
    assert "DescribeCluster" in written and "PutObject" in written and "/api/v1/nodes" in written
    assert any(
        r.levelno == logging.DEBUG and r.name.startswith("botocore") for r in everything_at_debug.records
    )
    assert any(  # every API server request is logged at DEBUG (its path and status only)
        r.levelno == logging.DEBUG and r.name == "fargate_insights.https_transport"
        for r in everything_at_debug.records
    )

    token = handler_module._environment.kube._token()  # the token the API server accepted last
    url = base64.urlsafe_b64decode(token.removeprefix("k8s-aws-v1.") + "==").decode()
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    for secret, what in (
        ("k8s-aws-v1.", "a bearer token"),
        (token[11:40], "the bearer token"),
        ("X-Amz-Signature", "a presigned URL's signature"),
        (signature, "the token's signature"),
        (url, "the token's presigned URL"),
        (SECRET_KEY, "the secret access key"),
        (SESSION_TOKEN, "the session token"),
        (SESSION_TOKEN[:24], "part of the session token"),
        ("PRIVATE KEY", "private key material"),
        ("Bearer ", "an Authorization header"),
    ):
        assert secret not in written, f"{what} appears in the output"
    # botocore's own DEBUG records of the S3 and STS requests are kept, with the credentials redacted
    assert "X-Amz-Security-Token=REDACTED" in written and "x-amz-security-token:REDACTED" in written
    assert re.search(r"Signature=[0-9a-f]{16}", written, re.IGNORECASE) is None, "a request's signature"


def test_a_server_not_signed_by_the_configured_ca_is_refused(
    sim, use_cluster, handler_module, capsys, monkeypatch
):
    other_ca = generate()[0]
    use_cluster(sim, ca_data=base64.b64encode(other_ca.encode()).decode())
    # Nothing in the environment turns verification off.
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    with pytest.raises(Exception, match=r"TLS verification failed.*not signed by the cluster's CA") as raised:
        handler_module.lambda_handler({}, LambdaContext())
    assert "CLUSTER_CA_DATA" in str(raised.value)
    assert sim.stats.requests == 0  # no request (and so no token) was sent to the impostor
    assert pod_documents(capsys.readouterr().out.splitlines()) == []


def test_system_trust_store_does_not_widen_the_trust(
    sim, use_cluster, handler_module, capsys, monkeypatch, tmp_path
):
    """Even if the system's trust store held the server's CA, only the configured CA counts."""
    (tmp_path / "ca.pem").write_text(sim.ca_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    use_cluster(sim, ca_data=base64.b64encode(generate()[0].encode()).decode())
    with pytest.raises(Exception, match=r"TLS verification failed"):
        handler_module.lambda_handler({}, LambdaContext())
    assert sim.stats.requests == 0


def test_ca_from_describe_cluster_is_enforced_too(sim, describe_cluster_serves, handler_module, capsys):
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.eks.models import eks_backends

    describe_cluster_serves(sim)
    eks_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[CLUSTER].certificate_authority = {
        "data": base64.b64encode(generate()[0].encode()).decode()
    }
    assert boto3.client("eks", region_name=REGION).describe_cluster(name=CLUSTER)["cluster"]["endpoint"]
    with pytest.raises(Exception, match=r"TLS verification failed.*not signed by the cluster's CA"):
        handler_module.lambda_handler({}, LambdaContext())
    assert sim.stats.requests == 0


def test_the_endpoint_must_be_https(sim, use_cluster, handler_module, monkeypatch):
    use_cluster(sim)
    monkeypatch.setenv("CLUSTER_ENDPOINT", sim.endpoint.replace("https://", "http://"))
    with pytest.raises(Exception, match=r"CLUSTER_ENDPOINT=.* is not an https URL"):
        handler_module.lambda_handler({}, LambdaContext())
    assert sim.stats.requests == 0


def test_the_right_ca_works(sim, use_cluster, handler_module, capsys):
    """The control for the refusals above: the same setup with the simulator's own CA collects."""
    use_cluster(sim)
    summary, lines = invoke(handler_module, capsys)
    assert summary["pods_emitted"] == len(sim.pods)
    for doc in pod_documents(lines):
        check_pod_document(doc, next(p for p in sim.pods if p.name == doc["PodName"]), rates=False)
