"""Verification of EKS bearer tokens (``k8s-aws-v1.`` + base64url of a presigned STS URL).

EKS hands the URL to STS; offline we check what can be checked locally: the shape, the age (15 minutes
after ``X-Amz-Date``, like EKS), and, when the simulator knows the secret key, the SigV4 signature
recomputed with ``x-k8s-aws-id`` set to this cluster's name, which is what binds a token to a cluster.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from calendar import timegm
from dataclasses import dataclass
from time import strptime
from urllib.parse import parse_qsl, quote, urlsplit

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format prefix, not a secret
MAX_TOKEN_BYTES = 4096
TOKEN_LIFETIME_S = 15 * 60
_HOST = re.compile(r"^sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?$")
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_REQUIRED = (
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
)


class TokenError(Exception):
    """The token is not acceptable; the message says why (for the simulator's own log, never the token)."""


@dataclass(frozen=True)
class Identity:
    """Who the token says the caller is (the access key id stands in for the IAM principal)."""

    access_key_id: str
    username: str


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def expected_signature(
    host: str,
    params: list[tuple[str, str]],
    cluster_name: str,
    secret_key: str,
    payload_hash: str = _EMPTY_SHA256,
) -> str:
    """SigV4 query signature of a presigned GetCallerIdentity GET with host and x-k8s-aws-id signed."""
    query = dict(params)
    signed_headers = query["X-Amz-SignedHeaders"]
    header_values = {"host": host, "x-k8s-aws-id": cluster_name}
    names = signed_headers.split(";")
    canonical_headers = "".join(f"{name}:{header_values.get(name, '')}\n" for name in names)
    canonical_query = "&".join(
        f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(params) if k != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        ["GET", "/", canonical_query, canonical_headers, signed_headers, payload_hash]
    )
    credential = query["X-Amz-Credential"].split("/")
    _, date, region, service, _ = credential
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _signing_key(secret_key, date, region, service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def verify_token(
    header: str | None,
    cluster_name: str,
    now: float,
    credentials: tuple[str, str] | None = None,
) -> Identity:
    """Check an ``Authorization`` header value; return the caller or raise TokenError."""
    if not header or not header.startswith("Bearer "):
        raise TokenError("no bearer token")
    token = header[len("Bearer ") :].strip()
    issued, identity = _check_token(token, cluster_name, credentials)
    if now > issued + TOKEN_LIFETIME_S:
        raise TokenError("token expired")
    return identity


@functools.lru_cache(maxsize=1024)
def _check_token(
    token: str, cluster_name: str, credentials: tuple[str, str] | None
) -> tuple[float, Identity]:
    """Everything but the age check; cached, since a client reuses one token for many requests."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("token too large")
    if not token.startswith(TOKEN_PREFIX):
        raise TokenError("token lacks the k8s-aws-v1. prefix")
    encoded = token[len(TOKEN_PREFIX) :]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("ascii")
    except (binascii.Error, ValueError) as error:
        raise TokenError("token is not base64url") from error
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not _HOST.match(host) or parts.path not in ("", "/"):
        raise TokenError("token URL is not an STS endpoint")
    params = parse_qsl(parts.query, keep_blank_values=True)
    query = dict(params)
    missing = [name for name in _REQUIRED if name not in query]
    if missing:
        raise TokenError(f"token URL lacks {', '.join(missing)}")
    if query["Action"] != "GetCallerIdentity" or query["Version"] != "2011-06-15":
        raise TokenError("token is not a GetCallerIdentity request")
    if query["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
        raise TokenError("unexpected signing algorithm")
    signed = query["X-Amz-SignedHeaders"].split(";")
    if "host" not in signed or "x-k8s-aws-id" not in signed:
        raise TokenError("x-k8s-aws-id is not signed into the token")
    credential = query["X-Amz-Credential"].split("/")
    if len(credential) != 5 or credential[3] != "sts" or credential[4] != "aws4_request":
        raise TokenError("malformed credential scope")
    try:
        issued = timegm(strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        int(query["X-Amz-Expires"])
    except ValueError as error:
        raise TokenError("malformed X-Amz-Date or X-Amz-Expires") from error
    if credentials is not None:
        access_key, secret_key = credentials
        if credential[0] != access_key:
            raise TokenError("unknown access key")
        given = query["X-Amz-Signature"]
        if not any(
            hmac.compare_digest(expected_signature(host, params, cluster_name, secret_key, payload), given)
            for payload in (_EMPTY_SHA256, "UNSIGNED-PAYLOAD")
        ):
            raise TokenError("signature mismatch (wrong cluster name or key)")
    return float(issued), Identity(
        access_key_id=credential[0],
        username=f"arn:aws:sts::123456789012:assumed-role/fargate-insights-collector/{credential[0]}",
    )
