"""The filter on botocore's loggers: credentials never leave in a DEBUG record, everything else does.

The end-to-end proof is tests/e2e/test_secrets.py (a full run with every logger at DEBUG); these cases
pin down each form botocore writes a credential in, one record at a time.
"""

from __future__ import annotations

import logging

import pytest

from fargate_insights import eks_auth

TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/token+value=="  # a fake session token
SIGNATURE = "3f1c0ffee" * 7


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("botocore.endpoint", logging.DEBUG, __file__, 1, msg, args or None, None)


@pytest.fixture
def redact():
    def run(record: logging.LogRecord) -> str | None:
        return record.getMessage() if eks_auth._NO_CREDENTIALS.filter(record) else None

    return run


@pytest.mark.parametrize(
    "text",
    [
        # the canonical request of the presigned STS call: the token in the query
        f"Action=GetCallerIdentity&X-Amz-Security-Token={TOKEN.replace('/', '%2F')}&X-Amz-SignedHeaders=host",
        # a canonical request's headers
        f"host:s3.amazonaws.com\nx-amz-security-token:{TOKEN}\n\nhost;x-amz-security-token",
        # `Sending http request: <AWSPreparedRequest ...>`: the headers as a dict of bytes
        f"headers={{'X-Amz-Security-Token': b'{TOKEN}', 'Authorization': b'AWS4-HMAC-SHA256 "
        f"Credential=AKIAEXAMPLE/20261127/us-west-2/s3/aws4_request, SignedHeaders=host, Signature={SIGNATURE}'}}",
    ],
)
def test_the_session_token_and_signatures_are_redacted(redact, text) -> None:
    for record in (_record(text), _record("Sending http request: %s", text)):
        message = redact(record)
        assert message is not None
        assert TOKEN not in message and TOKEN.replace("/", "%2F") not in message
        assert TOKEN[:12] not in message and SIGNATURE not in message
        assert "REDACTED" in message


def test_the_signature_record_is_dropped_and_others_are_kept_unchanged(redact) -> None:
    assert redact(_record("Signature:\n%s", SIGNATURE)) is None
    plain = "Event before-sign.sts.GetCallerIdentity: calling handler <function x>"
    assert redact(_record(plain)) == plain
    assert redact(_record("Response headers: %s", {"x-amz-request-id": "abc"})) == (
        "Response headers: {'x-amz-request-id': 'abc'}"
    )


def test_a_record_that_cannot_be_formatted_is_dropped(redact) -> None:
    # A handler would print the record's msg and args beside the formatting error, unredacted.
    assert redact(_record("token %s and %s", TOKEN)) is None


def test_the_filter_is_on_both_loggers_that_write_credentials() -> None:
    for name in ("botocore.auth", "botocore.endpoint"):
        assert eks_auth._NO_CREDENTIALS in logging.getLogger(name).filters
