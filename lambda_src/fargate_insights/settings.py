"""The function's configuration, read once from the environment and validated with fixable messages."""

from __future__ import annotations

import base64
import binascii
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import names


class ConfigurationError(Exception):
    """A setting is missing or wrong; the message names it and says how to fix it."""


@dataclass(frozen=True, slots=True)
class Settings:
    cluster_name: str
    region: str | None
    endpoint: str | None = None
    ca_pem: str | None = None
    max_in_flight: int = 64
    request_timeout_s: float = 10.0
    state_bucket: str | None = None
    state_key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        cluster = env.get(names.ENV_CLUSTER_NAME, "").strip()
        if not cluster:
            raise ConfigurationError(
                f"{names.ENV_CLUSTER_NAME} is not set: set it to the EKS cluster's name "
                f"(the CDK app does this from `-c clusterName=<name>`)."
            )
        endpoint = env.get(names.ENV_CLUSTER_ENDPOINT, "").strip() or None
        ca_data = env.get(names.ENV_CLUSTER_CA_DATA, "").strip() or None
        if (endpoint is None) != (ca_data is None):
            raise ConfigurationError(
                f"{names.ENV_CLUSTER_ENDPOINT} and {names.ENV_CLUSTER_CA_DATA} go together: set both "
                "(`aws eks describe-cluster --query 'cluster.[endpoint,certificateAuthority.data]'`) "
                "or neither (the function then calls eks:DescribeCluster)."
            )
        bucket = env.get(names.ENV_STATE_BUCKET, "").strip() or None
        state_key = env.get(names.ENV_STATE_KEY, "").strip() or f"state/{cluster}.json"
        return cls(
            cluster_name=cluster,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            endpoint=validate_endpoint(endpoint, names.ENV_CLUSTER_ENDPOINT) if endpoint else None,
            ca_pem=decode_ca_data(ca_data, names.ENV_CLUSTER_CA_DATA) if ca_data else None,
            max_in_flight=_int(env, names.ENV_MAX_IN_FLIGHT, 64, 1, 1024),
            request_timeout_s=_float(env, names.ENV_REQUEST_TIMEOUT, 10.0, 0.1, 300.0),
            state_bucket=bucket,
            state_key=state_key if bucket else None,
        )


def validate_endpoint(endpoint: str, setting: str) -> str:
    """Only an https URL with a host: TLS to the API server is never optional."""
    parts = urlsplit(endpoint)
    try:
        parts.port  # noqa: B018 (read for its check: a port that is not a number raises)
        valid = parts.scheme == "https" and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigurationError(
            f"{setting}={endpoint!r} is not an https URL: use the cluster endpoint as "
            "`aws eks describe-cluster` prints it, e.g. https://ABC123.gr7.us-east-1.eks.amazonaws.com"
        )
    return endpoint.rstrip("/")


def decode_ca_data(ca_data: str, setting: str) -> str:
    """DescribeCluster's certificateAuthority.data is base64 of a PEM bundle."""
    try:
        pem = base64.b64decode(ca_data, validate=True).decode("ascii")
    except (binascii.Error, ValueError) as err:
        raise ConfigurationError(
            f"{setting} is not valid base64: use certificateAuthority.data from "
            "`aws eks describe-cluster` unchanged"
        ) from err
    try:
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise ValueError("no PEM certificate")
        ssl.create_default_context(cadata=pem)  # what the API client will do with it
    except (ssl.SSLError, ValueError) as err:
        raise ConfigurationError(
            f"{setting} does not decode to a PEM certificate: use certificateAuthority.data from "
            f"`aws eks describe-cluster` unchanged ({err})"
        ) from err
    return pem


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={raw!r} must be a whole number from {low} to {high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={raw!r} must be a number of seconds from {low} to {high}")
    return value
