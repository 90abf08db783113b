"""`python -m fargate_insights collect --cluster NAME`: check a real cluster, then collect once.

Runs with the operator's own AWS credentials (or a role it assumes, e.g. the function's role with
`--role-arn`), through the same code path as the Lambda. Each prerequisite is checked in order and a
failure says what is wrong and which command or setting fixes it.
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, TextIO

from .collector import CollectionError, Collector, CollectorState
from .eks_auth import ClusterAccess, TokenProvider, describe_cluster
from .kube_api import KubeApiError, KubeClient
from .pod_metrics import PodMetrics
from .report_table import pod_documents, render
from .settings import ConfigurationError, decode_ca_data, validate_endpoint

RBAC_FIX = "kubectl apply -f infra/rbac.yaml"
# The Kubernetes group infra/rbac.yaml binds, and the CDK app's access entry maps the function's role to.
RBAC_GROUP = "fargate-insights"
# (connect, read) seconds for each SelfSubjectAccessReview: an unreachable endpoint must not hang.
REVIEW_TIMEOUT = (5.0, 15.0)
# --max-in-flight: the bounds the function itself accepts for MAX_IN_FLIGHT (settings.py).
MAX_IN_FLIGHT_RANGE = (1, 1024)
# --timeout: at most Lambda's own limit, which the function's collection cannot outlast either.
MAX_TIMEOUT_S = 900.0


class PreflightFailure(Exception):
    """A prerequisite is missing; the message says what is wrong, then (next lines) how to fix it."""


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


def _invalid(args: argparse.Namespace) -> str:
    """What is wrong with the options, or "" when they are usable (a NaN timeout would never end)."""
    low, high = MAX_IN_FLIGHT_RANGE
    if not low <= args.max_in_flight <= high:
        return f"--max-in-flight must be from {low} to {high} (the range of the function's MAX_IN_FLIGHT)"
    if not (math.isfinite(args.timeout) and 0.0 < args.timeout <= MAX_TIMEOUT_S):
        return f"--timeout must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds (Lambda's limit)"
    return ""


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Check each prerequisite in order, then collect once: 0 when the collection ran, else 1.

    The checks go to `out` before the table; with --format emf to `err`, so that `out` has only the EMF
    lines. `out` and `err` default to the streams current at the call.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    problem = _invalid(args)
    if problem:
        err.write(f"{problem}\n")
        return 2
    checks = _Checks(err if args.format == "emf" else out)
    try:
        _preflight_and_collect(args, checks, out)
    except PreflightFailure as failure:
        checks.fail(str(failure))
        return 1
    return 0


class _Checks:
    """One line per check; a failure's further lines (the fix) are indented under it."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def title(self, text: str) -> None:
        self.out.write(text + "\n")

    def ok(self, what: str) -> None:
        self._write("ok", what)

    def warn(self, what: str) -> None:
        self._write("WARN", what)

    def fail(self, what: str) -> None:
        self._write("FAIL", what)

    def _write(self, label: str, text: str) -> None:
        first, *rest = text.splitlines() or [""]
        self.out.write(f"  {label:<4}  {first}\n")
        for line in rest:
            self.out.write(f"        {line}\n")
        self.out.flush()


@dataclass(frozen=True, slots=True)
class _Where:
    """What the fixes name: the cluster, its region and the identity the checks run as."""

    cluster: str
    region: str
    principal: str = ""

    @property
    def cli(self) -> str:
        """The AWS CLI options that name this cluster."""
        return f"--cluster-name {self.cluster} --region {self.region}"

    @property
    def who(self) -> str:
        return self.principal or "<your IAM principal ARN>"


def _preflight_and_collect(args: argparse.Namespace, checks: _Checks, out: TextIO) -> None:
    checks.title(f"Preflight for EKS cluster {args.cluster!r}")
    session, region = _session(args)
    session, where = _credentials(session, args, _Where(args.cluster, region), checks)
    access = _cluster_access(session, args, where, checks)
    tokens = TokenProvider(args.cluster, session, region)
    try:
        token = tokens.token()
    except ConfigurationError as error:
        raise PreflightFailure(str(error)) from error
    _token_and_permissions(access, token, where, checks, args.role_arn)
    kube = KubeClient(
        access.endpoint,
        access.ca_pem,
        token=tokens.token,
        invalidate_token=tokens.invalidate,
        max_in_flight=args.max_in_flight,
    )
    deadline = time.monotonic() + args.timeout
    lines: list[str] = []

    def sink(line: str, _: PodMetrics) -> None:
        lines.append(line)

    try:
        try:
            nodes = kube.list_fargate_nodes(deadline)
        except KubeApiError as error:
            raise PreflightFailure(f"listing the Fargate nodes failed: {error}") from error
        if not nodes:
            raise PreflightFailure(
                "no Fargate nodes found (no node is labelled eks.amazonaws.com/compute-type=fargate): "
                "no pod of this cluster runs on Fargate\n"
                "Fix: create a Fargate profile whose selectors match the pods to monitor, then restart "
                "those pods:\n"
                f"  aws eks create-fargate-profile {where.cli} --fargate-profile-name NAME "
                "--pod-execution-role-arn ROLE_ARN --selectors namespace=NAMESPACE\n"
                "`kubectl get nodes -l eks.amazonaws.com/compute-type=fargate` lists the Fargate nodes"
            )
        checks.ok(f"Fargate nodes found: {len(nodes)}")
        collector = Collector(args.cluster, kube, CollectorState(), sink, max_in_flight=args.max_in_flight)
        try:
            report = collector.run(deadline)
        except CollectionError as error:
            raise PreflightFailure(str(error)) from error
    finally:
        kube.close()
    if report.failures or report.nodes_skipped:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report.failures.items()))
        checks.warn(
            f"cAdvisor read on {report.nodes_scraped} of {report.nodes_discovered} nodes; "
            f"{report.scrape_failures} failed ({reasons or 'none'}), {report.nodes_skipped} not reached "
            "before --timeout\nThe function counts them the same way (metric ScrapeFailures); their "
            "pods are missing from the table"
        )
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
    out.flush()


def _session(args: argparse.Namespace) -> tuple[Any, str]:
    """The boto3 session and its region: --region, else AWS_REGION, else the profile's.

    AWS_REGION is read here because botocore reads only AWS_DEFAULT_REGION (Lambda sets both). A missing
    profile or an unreadable config file is a failed check with its fix, not a traceback.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    try:
        session = boto3.session.Session(region_name=args.region or os.environ.get("AWS_REGION") or None)
        region = session.region_name
    except ProfileNotFound as error:
        raise PreflightFailure(_profile_advice(error)) from error
    except BotoCoreError as error:
        raise PreflightFailure(
            f"the AWS configuration cannot be read ({error})\n"
            "Fix: correct the file it names (AWS_CONFIG_FILE, by default ~/.aws/config); "
            "`aws configure list` reads the same files"
        ) from error
    if not region:
        raise PreflightFailure(
            "no AWS region\nFix: pass --region REGION, or set AWS_REGION (or AWS_DEFAULT_REGION), or your "
            "profile's region (`aws configure set region REGION`)"
        )
    return session, region


def _profile_advice(error: Exception) -> str:
    profile = getattr(error, "kwargs", {}).get("profile", "")
    return (
        f"AWS profile {profile!r} not found ({error})\n"
        "Fix: check AWS_PROFILE (and AWS_DEFAULT_PROFILE): `aws configure list-profiles` lists the profiles "
        "there are; unset it to use the default profile, or create it with `aws configure --profile NAME`"
    )


def _credentials(
    session: Any, args: argparse.Namespace, where: _Where, checks: _Checks
) -> tuple[Any, _Where]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

    try:
        credentials = session.get_credentials()
    except ProfileNotFound as error:  # a source_profile that does not exist
        raise PreflightFailure(_profile_advice(error)) from error
    except BotoCoreError as error:  # e.g. a credential_process that fails
        raise PreflightFailure(
            f"AWS credentials could not be loaded ({error})\n"
            "Fix: check how your profile gets them (credential_process, sso_session, role_arn and "
            "source_profile in ~/.aws/config); `aws sts get-caller-identity` shows the same error"
        ) from error
    if credentials is None:
        raise PreflightFailure(
            "no AWS credentials found\n"
            "Fix: run `aws configure` (or `aws sso login --profile NAME` and set AWS_PROFILE=NAME), or "
            "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
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
    except _network_errors() as error:
        raise PreflightFailure(_no_network_advice("AWS STS", error)) from error
    except (ClientError, BotoCoreError) as error:
        raise PreflightFailure(
            f"AWS credentials are not usable ({error})\n"
            "Fix: refresh them (`aws sso login`, new access keys)"
            + (
                f"; check that your identity may assume {args.role_arn} (its trust policy)"
                if args.role_arn
                else ""
            )
        ) from error
    arn = str(identity.get("Arn", ""))
    checks.ok(f"AWS credentials: {arn}")
    # The role as given: its ARN keeps a path (role/service-role/NAME) that the assumed-role ARN drops.
    return session, _Where(where.cluster, where.region, args.role_arn or principal_arn(arn))


def _network_errors() -> tuple[type[Exception], ...]:
    """botocore's errors for a request that got no answer (refused, timed out, proxy, TLS)."""
    from botocore.exceptions import ConnectionError as NoConnection
    from botocore.exceptions import HTTPClientError

    return (NoConnection, HTTPClientError)


def _no_network_advice(service: str, error: Exception) -> str:
    """A network failure is not a credentials problem: new credentials would not help."""
    return (
        f"cannot reach {service} ({error})\n"
        "Fix: check this machine's network path to AWS: a proxy it needs (HTTPS_PROXY, NO_PROXY), a "
        "firewall, VPC endpoints in a VPC without internet access, or an endpoint_url / AWS_ENDPOINT_URL "
        "setting that points elsewhere"
    )


def principal_arn(caller_arn: str) -> str:
    """The ARN an access entry names: a role's, not its session's (STS prints the assumed-role form).

    A role with a path has it in its ARN, which the assumed-role form leaves out; `aws iam get-role`
    prints the full one.
    """
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return caller_arn


def _cluster_access(session: Any, args: argparse.Namespace, where: _Where, checks: _Checks) -> ClusterAccess:
    if args.endpoint or args.ca_data:
        if not (args.endpoint and args.ca_data):
            raise PreflightFailure(
                "--endpoint and --ca-data go together\nFix: pass both, or neither (DescribeCluster then "
                "finds them)"
            )
        try:
            access = ClusterAccess(
                endpoint=validate_endpoint(args.endpoint, "--endpoint"),
                ca_pem=decode_ca_data(args.ca_data, "--ca-data"),
            )
        except ConfigurationError as error:
            raise PreflightFailure(str(error)) from error
        checks.ok(f"cluster endpoint (given): {access.endpoint}")
        return access
    try:
        access = describe_cluster(session, args.cluster, where.region)
    except ConfigurationError as error:
        raise PreflightFailure(_describe_advice(session, where, error)) from error
    checks.ok(f"eks:DescribeCluster: {access.endpoint}")
    return access


def _describe_advice(session: Any, where: _Where, error: ConfigurationError) -> str:
    """DescribeCluster's failure in this command's terms (its options, not the function's settings)."""
    from botocore.exceptions import BotoCoreError, ClientError

    cause = error.__cause__
    if isinstance(cause, _network_errors()):
        return _no_network_advice(f"the EKS API in {where.region}", cause) + (
            "; or skip DescribeCluster: " + _endpoint_options_advice(where)
        )
    code = cause.response.get("Error", {}).get("Code", "") if isinstance(cause, ClientError) else ""
    if code == "ResourceNotFoundException":
        try:
            names = session.client("eks", region_name=where.region).list_clusters().get("clusters", [])
            there = f"clusters there: {', '.join(names)}" if names else "there is no cluster there"
        except Exception:  # only a hint; the command below lists them too
            there = "could not list the clusters there"
        return (
            f"EKS cluster {where.cluster!r} not found in region {where.region} ({there})\n"
            "Fix: check --cluster and --region; `aws eks list-clusters --region REGION` lists a region's "
            "clusters"
        )
    if code in ("AccessDeniedException", "UnauthorizedOperation", "AccessDenied"):
        return (
            f"{where.who} may not call eks:DescribeCluster on {where.cluster!r} ({code})\n"
            "Fix: allow it eks:DescribeCluster on the cluster, or " + _endpoint_options_advice(where)
        )
    if isinstance(cause, ClientError | BotoCoreError):  # throttled, or an error of EKS's own
        return (
            f"eks:DescribeCluster failed for {where.cluster!r} ({code or cause})\n"
            "Fix: try again in a minute, or skip the call: " + _endpoint_options_advice(where)
        )
    return str(error)  # not an AWS error: the cluster's answer (e.g. no endpoint yet: not ACTIVE)


def _endpoint_options_advice(where: _Where) -> str:
    """The preflight's own way around DescribeCluster (the function's is CLUSTER_ENDPOINT/_CA_DATA)."""
    return (
        "pass --endpoint and --ca-data, as someone who may call it prints them:\n"
        f"  aws eks describe-cluster --name {where.cluster} --region {where.region} "
        "--query 'cluster.[endpoint,certificateAuthority.data]' --output text"
    )


def _token_and_permissions(
    access: ClusterAccess, token: str, where: _Where, checks: _Checks, role_arn: str | None
) -> None:
    """SelfSubjectAccessReviews through the kubernetes client: proves the token and checks RBAC."""
    from kubernetes import client

    # This client version reads the CA from a file only (its Configuration has no in-memory CA option).
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as ca_file:
        ca_file.write(access.ca_pem)
    try:
        config = client.Configuration(
            host=access.endpoint,
            api_key={"BearerToken": token},
            api_key_prefix={"BearerToken": "Bearer"},
            ssl_ca_cert=ca_file.name,
        )
        config.retries = 1
        # No proxy, whatever HTTPS_PROXY says (this client reads it): the function's own transport uses
        # none, so the check must take the same network path as the collection that follows.
        config.proxy = None
        config.no_proxy = None
        denied = _reviews(client.ApiClient(config), access.endpoint, where, role_arn)
    finally:
        os.unlink(ca_file.name)
    checks.ok("token accepted by the API server")
    if not denied:
        checks.ok("RBAC: " + ", ".join(str(p) for p in REQUIRED_PERMISSIONS))
        return
    denial = f"not allowed: {', '.join(denied)} (for {where.who})\n"
    if not role_arn:
        raise PreflightFailure(denial + _as_yourself_advice())
    raise PreflightFailure(
        denial + f"Fix: apply the collector's RBAC, which lets the Kubernetes group {RBAC_GROUP!r} list "
        "nodes and get nodes/proxy:\n"
        f"  {RBAC_FIX}\n"
        "and put the role in that group with its EKS access entry (`aws eks describe-access-entry` shows "
        "its groups):\n"
        f"  aws eks update-access-entry {where.cli} --principal-arn {where.who} "
        f"--kubernetes-groups {RBAC_GROUP}"
    )


def _as_yourself_advice() -> str:
    """Without --role-arn the identity is a person's, which must not join the collector's group."""
    return (
        "This ran as yourself; what matters is the function's role. Do not add yourself to the group "
        f"{RBAC_GROUP!r}: its get nodes/proxy reaches every kubelet, exec into pods included\n"
        "Fix: check the function's access instead: run this again with --role-arn <the function's role "
        "ARN> (the stack's RoleArn output; its trust policy must let you assume it), after applying the "
        f"collector's RBAC:\n  {RBAC_FIX}"
    )


def _reviews(api_client: Any, endpoint: str, where: _Where, role_arn: str | None) -> list[str]:
    """The required permissions the API server denies this token (401 and network errors raise)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    denied: list[str] = []
    with api_client:
        api = client.AuthorizationV1Api(api_client)
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
                answer = api.create_self_subject_access_review(review, _request_timeout=REVIEW_TIMEOUT)
            except ApiException as error:
                if error.status == 401:
                    raise PreflightFailure(_unauthorized_advice(where, role_arn)) from error
                raise PreflightFailure(
                    f"SelfSubjectAccessReview failed: HTTP {error.status} {error.reason}"
                ) from error
            except Exception as error:  # urllib3/ssl errors: unreachable endpoint or wrong CA
                raise PreflightFailure(_unreachable_advice(endpoint, error)) from error
            if not answer.status.allowed:
                denied.append(str(permission))
    return denied


def _unauthorized_advice(where: _Where, role_arn: str | None) -> str:
    """Only the function's role belongs in the collector's group: a person gets no command for it."""
    rejected = (
        f"the API server rejected the token (401 Unauthorized): {where.who} is not mapped into the cluster\n"
    )
    others = (
        f"`aws eks list-access-entries {where.cli}` lists the entries. A cluster in CONFIG_MAP "
        "authentication mode maps identities in aws-auth instead. A token for another cluster name, or "
        "from a clock more than a few minutes off, is refused the same way"
    )
    if not role_arn:
        return rejected + _as_yourself_advice() + "\n" + others
    return (
        rejected + "Fix: create an EKS access entry for it (the CDK app creates one for the function's "
        "role):\n"
        f"  aws eks create-access-entry {where.cli} --principal-arn {where.who} "
        f"--kubernetes-groups {RBAC_GROUP}\n" + others
    )


def _unreachable_advice(endpoint: str, error: Exception) -> str:
    import ssl

    from urllib3.exceptions import MaxRetryError, NewConnectionError, SSLError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    cause: BaseException = error
    if isinstance(error, MaxRetryError) and error.reason is not None:
        cause = error.reason
    if isinstance(cause, SSLError | ssl.SSLError):
        return (
            f"TLS verification of the API server at {endpoint} failed ({cause})\n"
            "Fix: the CA must be the cluster's own: pass certificateAuthority.data unchanged as --ca-data "
            "(`aws eks describe-cluster --name NAME --query cluster.certificateAuthority.data --output "
            "text`), or leave out --endpoint and --ca-data to use DescribeCluster"
        )
    advice = (
        f"cannot reach the API server at {endpoint} ({type(cause).__name__}: {cause})\n"
        "Fix: check the endpoint. A private endpoint answers only inside the cluster's VPC (or a network "
        "connected to it), with 443 allowed from here on the cluster security group"
    )
    # urllib3's NewConnectionError (refused, unreachable) is a ConnectTimeoutError for history's sake
    timed_out = isinstance(cause, Urllib3Timeout | TimeoutError) and not isinstance(cause, NewConnectionError)
    if timed_out:
        advice += (
            ". A public endpoint limited to some CIDRs (publicAccessCidrs) does not answer from outside "
            "them, nor to a function deployed outside a VPC: add this machine's address (and the NAT "
            "address of the function's VPC) to publicAccessCidrs, or enable private endpoint access and "
            "deploy the function in the cluster's VPC"
        )
    return advice


def ca_data_of(pem: str) -> str:
    """The base64 form DescribeCluster uses, for --ca-data."""
    return base64.b64encode(pem.encode()).decode()
