"""Helpers for tests that talk to the simulator: EKS tokens made exactly like ``aws eks get-token``."""

from __future__ import annotations

import base64
import ssl
from typing import Any

from .auth import TOKEN_PREFIX


def make_token(
    cluster_name: str,
    access_key: str = "AKIASIMULATOR0000001",
    secret_key: str = "simulator-secret-key",  # noqa: S107 - fake test key
    region: str = "us-west-2",
    expires_in: int = 60,
) -> str:
    """A real EKS bearer token signed with the given (fake) keys; computed locally, no network."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
    )
    client = session.client("sts", region_name=region)

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster_name

    client.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    url: str = client.generate_presigned_url(
        "get_caller_identity", Params={}, ExpiresIn=expires_in, HttpMethod="GET"
    )
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return TOKEN_PREFIX + encoded


def ssl_context(ca_pem: str) -> ssl.SSLContext:
    """A client TLS context that trusts only the simulator's CA (hostname checked)."""
    context = ssl.create_default_context(cadata=ca_pem)
    return context
