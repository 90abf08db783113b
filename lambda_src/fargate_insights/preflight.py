"""`python -m fargate_insights collect --cluster NAME`: check a real cluster, then collect once.

Runs with the operator's own AWS credentials (or a role it assumes, e.g. the function's role with
`--role-arn`), through the same code path as the Lambda. Each prerequisite is checked in order and a
failure says what is wrong and which command or setting fixes it.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from .collector import CollectionError, Collector, CollectorState
from .eks_auth import ClusterAccess, TokenProvider, describe_cluster
from .kube_api import KubeApiError, KubeClient
from .pod_metrics import PodMetrics
from .report_table import pod_documents, render
from .settings import ConfigurationError, decode_ca_data, validate_endpoint

RBAC_FIX = "kubectl apply -f infra/rbac.yaml"


class PreflightFailure(Exception):
    """A prerequisite is missing; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class Permission:
    verb: str
    resource: str
    subresource: str = ""

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}" + (f"/{self.subresource}" if self.subresource else "")


REQUIRED_PERMISSIONS = (Permission("list", "nodes"), Permission("get", "nodes", "proxy"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", required=True, help="EKS cluster name")
    parser.add_argument("--region", default=None, help="AWS region (default: your profile's)")
    parser.add_argument("--role-arn", default=None, help="assume this role first (e.g. the function's)")
    parser.add_argument("--endpoint", default=None, help="API server URL, to skip eks:DescribeCluster")
    parser.add_argument("--ca-data", default=None, help="base64 CA, as DescribeCluster returns it")
    parser.add_argument("--max-in-flight", type=int, default=16, help="concurrent node scrapes")
    parser.add_argument("--format", choices=("table", "emf"), default="table")
    parser.add_argument("--timeout", type=float, default=60.0, help="overall time limit (s)")


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    checks = _Checks(out)
    try:
        _preflight_and_collect(args, checks, out)
    except PreflightFailure as failure:
        checks.fail(str(failure))
        return 1
    return 0


class _Checks:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def ok(self, what: str) -> None:
        self._out.write(f"  ok    {what}\n")

    def fail(self, what: str) -> None:
        self._out.write(f"  FAIL  {what}\n")

    def step(self, what: str, action: Callable[[], str]) -> None:
        self.ok(f"{what}: {action()}")


def _preflight_and_collect(args: argparse.Namespace, checks: _Checks, out: TextIO) -> None:
    import boto3

    out.write(f"Preflight for EKS cluster {args.cluster!r}\n")
    session = boto3.session.Session(region_name=args.region)
    region = session.region_name
    if not region:
        raise PreflightFailure("no AWS region: pass --region or set AWS_REGION / a profile region")
    session = _credentials(session, args, checks)
    access = _cluster_access(session, args, region, checks)
    tokens = TokenProvider(args.cluster, session, region)
    try:
        tokens.token()
    except ConfigurationError as err:
        raise PreflightFailure(str(err)) from err
    _token_and_permissions(access, tokens.token(), checks)
    kube = KubeClient(
        access.endpoint,
        access.ca_pem,
        token=tokens.token,
        invalidate_token=tokens.invalidate,
        max_in_flight=args.max_in_flight,
    )
    deadline = time.monotonic() + args.timeout
    try:
        nodes = kube.list_fargate_nodes(deadline)
    except KubeApiError as err:
        raise PreflightFailure(f"listing Fargate nodes failed: {err}") from err
    if not nodes:
        raise PreflightFailure(
            "no Fargate nodes found (label eks.amazonaws.com/compute-type=fargate): create a Fargate "
            "profile whose selectors match running pods (`eksctl create fargateprofile ...`)"
        )
    checks.ok(f"Fargate nodes found: {len(nodes)}")
    lines: list[str] = []

    def sink(line: str, _: PodMetrics) -> None:
        lines.append(line)

    collector = Collector(args.cluster, kube, CollectorState(), sink, max_in_flight=args.max_in_flight)
    try:
        report = collector.run(deadline)
    except CollectionError as err:
        raise PreflightFailure(str(err)) from err
    finally:
        kube.close()
    if report.failures:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report.failures.items()))
        checks.fail(f"some node scrapes failed ({reasons}); the Lambda would count them the same way")
    else:
        checks.ok(f"cAdvisor read through the API server proxy on {report.nodes_scraped} nodes")
    if args.format == "emf":
        for line in lines:
            out.write(line + "\n")
    else:
        out.write("\n" + render(pod_documents(lines)) + "\n")
        out.write(
            "(CPU and network are rates and need two samples: the deployed function reports them from "
            "its second run on)\n"
        )


def _credentials(session: Any, args: argparse.Namespace, checks: _Checks) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    if session.get_credentials() is None:
        raise PreflightFailure(
            "no AWS credentials: run `aws configure`, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY"
        )
    try:
        sts = session.client("sts")
        if args.role_arn:
            creds = sts.assume_role(RoleArn=args.role_arn, RoleSessionName="fargate-insights-preflight")[
                "Credentials"
            ]
            session = boto3.session.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=session.region_name,
            )
            sts = session.client("sts")
        identity = sts.get_caller_identity()
    except (ClientError, BotoCoreError) as err:
        raise PreflightFailure(
            f"AWS credentials are not usable ({err}): refresh them (`aws sso login`, new keys)"
            + (f", and check that you may assume {args.role_arn}" if args.role_arn else "")
        ) from err
    checks.ok(f"AWS credentials: {identity.get('Arn')}")
    return session


def _cluster_access(session: Any, args: argparse.Namespace, region: str, checks: _Checks) -> ClusterAccess:
    if args.endpoint or args.ca_data:
        if not (args.endpoint and args.ca_data):
            raise PreflightFailure("--endpoint and --ca-data go together: pass both or neither")
        try:
            access = ClusterAccess(
                endpoint=validate_endpoint(args.endpoint, "--endpoint"),
                ca_pem=decode_ca_data(args.ca_data, "--ca-data"),
            )
        except ConfigurationError as err:
            raise PreflightFailure(str(err)) from err
        checks.ok(f"cluster endpoint (given): {access.endpoint}")
        return access
    try:
        access = describe_cluster(session, args.cluster, region)
    except ConfigurationError as err:
        raise PreflightFailure(str(err)) from err
    checks.ok(f"eks:DescribeCluster: {access.endpoint}")
    return access


def _token_and_permissions(access: ClusterAccess, token: str, checks: _Checks) -> None:
    """SelfSubjectAccessReviews through the kubernetes client: proves the token and checks RBAC."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as ca_file:
        ca_file.write(access.ca_pem)
    try:
        config = client.Configuration(
            host=access.endpoint,
            api_key={"BearerToken": token},
            api_key_prefix={"BearerToken": "Bearer"},
            ssl_ca_cert=ca_file.name,
        )
        api = client.AuthorizationV1Api(client.ApiClient(config))
        denied = []
        for permission in REQUIRED_PERMISSIONS:
            review = client.V1SelfSubjectAccessReview(
                spec=client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=client.V1ResourceAttributes(
                        verb=permission.verb,
                        resource=permission.resource,
                        subresource=permission.subresource or None,
                    )
                )
            )
            try:
                answer = api.create_self_subject_access_review(review)
            except ApiException as err:
                if err.status == 401:
                    raise PreflightFailure(
                        "the API server rejected the token (401): this identity is not mapped into the "
                        "cluster; create an EKS access entry for it (the CDK app does for the function's "
                        "role) or add it to the aws-auth ConfigMap's mapRoles"
                    ) from err
                raise PreflightFailure(
                    f"SelfSubjectAccessReview failed: HTTP {err.status} {err.reason}"
                ) from err
            except Exception as err:  # urllib3/ssl errors: unreachable endpoint or wrong CA
                raise PreflightFailure(
                    f"cannot reach the API server at {access.endpoint} ({type(err).__name__}): for a private "
                    "endpoint run this from inside the VPC; check the CA"
                ) from err
            if not answer.status.allowed:
                denied.append(str(permission))
        checks.ok("token accepted by the API server")
        if denied:
            raise PreflightFailure(
                f"not allowed: {', '.join(denied)}. Apply the collector's RBAC (`{RBAC_FIX}`) and map the "
                "identity to its group (EKS access entry with kubernetes group fargate-insights)"
            )
        checks.ok("RBAC: " + ", ".join(str(p) for p in REQUIRED_PERMISSIONS))
    finally:
        os.unlink(ca_file.name)


def ca_data_of(pem: str) -> str:
    """The base64 form DescribeCluster uses, for --ca-data."""
    return base64.b64encode(pem.encode()).decode()
