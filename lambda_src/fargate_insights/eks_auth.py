"""Where the cluster is and how to prove who we are to it, from the function's IAM role.

The bearer token is what `aws eks get-token` prints: a presigned STS GetCallerIdentity URL with the
cluster name signed into the `x-k8s-aws-id` header. It is made locally (no network call), reused while
it is fresh and renewed well before the API server's 15-minute limit. It is never logged.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .settings import ConfigurationError, decode_ca_data, validate_endpoint

TOKEN_PREFIX: Final = "k8s-aws-v1."  # noqa: S105 (a format prefix, not a secret)
CLUSTER_ID_HEADER: Final = "x-k8s-aws-id"
# EKS accepts a token for 15 minutes after it was signed; renew with a wide margin.
TOKEN_REFRESH_AFTER_S: Final = 10 * 60
# eks:DescribeCluster attempts in all (the first and its retries), and each one's timeouts: fewer and
# shorter when the function has less time (`describe_cluster`'s budget).
DESCRIBE_CLUSTER_ATTEMPTS: Final = 4
DESCRIBE_CONNECT_TIMEOUT_S: Final = 3.0
DESCRIBE_READ_TIMEOUT_S: Final = 5.0


class _NoCredentialsInBotocoreLogs(logging.Filter):
    """Keep the credentials out of botocore's DEBUG records.

    Dropped: the record of each SigV4 signature. For the EKS token that signature is the secret: with
    the canonical request botocore logs next to it, anyone reading DEBUG logs could rebuild a valid
    token. Redacted: the session token, which a canonical request shows in its query or headers and
    `Sending http request` in each request's headers, and the signature in an Authorization header.
    In Lambda every credential has a session token.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Signature:"):
            return False
        try:
            message = record.getMessage()
        except Exception:  # a handler would print its msg and args unredacted beside the error: drop it
            return False
        redacted = _CREDENTIAL_VALUES.sub(r"\1REDACTED", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# A session token after `X-Amz-Security-Token=` (a query), `x-amz-security-token:` (a canonical header)
# or `'X-Amz-Security-Token': b'` (a headers dict), and a signature after `Signature=`.
_CREDENTIAL_VALUES: Final = re.compile(
    r"(x-amz-security-token(?:'\s*:\s*b?'|[=:])|signature=)([^&\s',]+)", re.IGNORECASE
)
_NO_CREDENTIALS: Final = _NoCredentialsInBotocoreLogs()
for _name in ("botocore.auth", "botocore.endpoint"):
    logging.getLogger(_name).addFilter(_NO_CREDENTIALS)  # idempotent: the same filter object


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    """What a client needs to reach the API server: its URL and the CA that signs its certificate."""

    endpoint: str
    ca_pem: str


class TokenProvider:
    """Thread-safe source of EKS bearer tokens for one cluster."""

    def __init__(
        self,
        cluster_name: str,
        session: Any,
        region: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cluster = cluster_name
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._made_at = 0.0
        # The regional STS endpoint, as botocore resolves it for the region's partition (a hand-made
        # `sts.<region>.amazonaws.com` would be wrong in China and the isolated regions).
        self._sts = session.client("sts", region_name=region)
        self._sts.meta.events.register("before-sign.sts.GetCallerIdentity", self._add_cluster_header)

    def _add_cluster_header(self, request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = self._cluster

    def token(self) -> str:
        """A fresh token; made again when the last one is older than the refresh age."""
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._made_at >= TOKEN_REFRESH_AFTER_S:
                self._token = self._make()
                self._made_at = now
            return self._token

    def invalidate(self) -> None:
        """Forget the current token (after a 401), so that the next call signs a new one."""
        with self._lock:
            self._token = None

    def _make(self) -> str:
        from botocore.exceptions import BotoCoreError, NoCredentialsError

        try:
            url: str = self._sts.generate_presigned_url(
                "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
            )
        except NoCredentialsError as err:
            raise ConfigurationError(
                "No AWS credentials found to sign the EKS token: in Lambda the function's role provides "
                "them; locally, configure a profile (`aws configure` or AWS_PROFILE) or environment keys."
            ) from err
        except BotoCoreError as err:
            raise ConfigurationError(f"Could not sign the EKS token: {err}") from err
        return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def describe_cluster(
    session: Any, cluster_name: str, region: str | None, budget_s: float | None = None
) -> ClusterAccess:
    """Endpoint and CA from eks:DescribeCluster, with errors that say what to fix.

    `budget_s`: the time the call may take in all, retries included (the function's remaining time).
    """
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    # Throttling and transient errors are retried with botocore's jittered exponential back-off. Bounded
    # so that even the worst case (every attempt timing out, back-offs of up to 1, 2 and 4 s) ends
    # inside the budget with this message, rather than as a Lambda timeout that says nothing.
    attempts, connect_s, read_s = _describe_limits(budget_s)
    eks = session.client(
        "eks",
        region_name=region,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=connect_s,
            read_timeout=read_s,
        ),
    )
    try:
        cluster = eks.describe_cluster(name=cluster_name)["cluster"]
    except NoCredentialsError as err:
        raise ConfigurationError(
            "No AWS credentials to call eks:DescribeCluster: configure a profile or environment keys."
        ) from err
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise ConfigurationError(
                f"EKS cluster {cluster_name!r} not found in region {region}: check CLUSTER_NAME and that "
                "the function runs in the cluster's region."
            ) from err
        if code in ("AccessDeniedException", "UnauthorizedOperation", "AccessDenied"):
            raise ConfigurationError(
                f"Not allowed to call eks:DescribeCluster on {cluster_name!r}: grant it to the role "
                f"(the CDK app does), or set CLUSTER_ENDPOINT and CLUSTER_CA_DATA instead. ({code})"
            ) from err
        if code in ("ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"):
            raise ConfigurationError(
                f"eks:DescribeCluster failed for {cluster_name!r}: {code} after {attempts} "
                f"attempt{'s' if attempts > 1 else ''}: the next invocation tries again; to avoid the call, "
                "set CLUSTER_ENDPOINT and "
                "CLUSTER_CA_DATA."
            ) from err
        raise ConfigurationError(f"eks:DescribeCluster failed for {cluster_name!r}: {code or err}") from err
    except BotoCoreError as err:
        raise ConfigurationError(
            f"Could not reach the EKS API to describe {cluster_name!r} ({err}): a function in a VPC needs "
            "a route to EKS (NAT or an interface endpoint), or set CLUSTER_ENDPOINT and CLUSTER_CA_DATA."
        ) from err
    endpoint = cluster.get("endpoint") or ""
    ca_data = (cluster.get("certificateAuthority") or {}).get("data") or ""
    if not endpoint or not ca_data:
        status = cluster.get("status", "unknown")
        raise ConfigurationError(
            f"Cluster {cluster_name!r} has no endpoint or CA yet (status {status}): wait until it is ACTIVE."
        )
    return ClusterAccess(
        endpoint=validate_endpoint(endpoint, "DescribeCluster endpoint"),
        ca_pem=decode_ca_data(ca_data, "DescribeCluster certificateAuthority.data"),
    )


def _describe_limits(budget_s: float | None) -> tuple[int, float, float]:
    """Attempts and per-attempt connect and read timeouts whose worst case fits in `budget_s`."""
    per_attempt = DESCRIBE_CONNECT_TIMEOUT_S + DESCRIBE_READ_TIMEOUT_S
    if budget_s is None:
        return DESCRIBE_CLUSTER_ATTEMPTS, DESCRIBE_CONNECT_TIMEOUT_S, DESCRIBE_READ_TIMEOUT_S
    for attempts in range(DESCRIBE_CLUSTER_ATTEMPTS, 1, -1):
        backoffs = float(2 ** (attempts - 1) - 1)  # 1 + 2 + 4 s at most between the attempts
        if attempts * per_attempt + backoffs <= budget_s:
            return attempts, DESCRIBE_CONNECT_TIMEOUT_S, DESCRIBE_READ_TIMEOUT_S
    share = max(0.1, budget_s) / per_attempt  # one attempt, its timeouts cut to the budget
    return 1, DESCRIBE_CONNECT_TIMEOUT_S * min(1.0, share), DESCRIBE_READ_TIMEOUT_S * min(1.0, share)
