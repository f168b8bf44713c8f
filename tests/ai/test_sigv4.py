"""AWS Signature Version 4 against AWS's published examples."""

from __future__ import annotations

import datetime

import pytest

from quiver.ai import sigv4

EXAMPLE_TIME = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.UTC)


def _suite(
    method: str, url: str, body: bytes = b"", token: str | None = None, **headers: str
) -> dict[str, str]:
    """Signed with the credentials, region, service and time of AWS's test suite."""
    return sigv4.sign(
        method,
        url,
        {name.replace("_", "-"): value for name, value in headers.items()},
        body,
        region="us-east-1",
        service="service",
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token=token,
        now=EXAMPLE_TIME,
    )


SUITE_CREDENTIAL = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


@pytest.mark.parametrize(
    ("method", "url", "signature"),
    [
        # aws-sig-v4-test-suite: get-vanilla
        (
            "GET",
            "https://example.amazonaws.com/",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        # get-vanilla-query-order-key-case: the query is sorted before signing
        (
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        # post-vanilla
        (
            "POST",
            "https://example.amazonaws.com/",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        # get-utf8: a raw non-ASCII path is percent-encoded once
        (
            "GET",
            "https://example.amazonaws.com/\u1234",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        ),
    ],
)
def test_signatures_match_the_aws_test_suite(method: str, url: str, signature: str) -> None:
    headers = _suite(method, url)
    assert headers["Authorization"] == (
        f"{SUITE_CREDENTIAL}, SignedHeaders=host;x-amz-date, Signature={signature}"
    )
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["X-Amz-Content-Sha256"] == sigv4.EMPTY_SHA256
    assert "X-Amz-Security-Token" not in headers


def test_signature_matches_the_iam_example_of_the_aws_documentation() -> None:
    headers = sigv4.sign(
        "GET",
        "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        b"",
        region="us-east-1",
        service="iam",
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        now=EXAMPLE_TIME,
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


def test_session_token_is_signed_and_returned() -> None:
    headers = _suite(
        "POST",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
        b"{}",
        "TOKEN",
        Content_Type="application/json",
    )
    assert headers["X-Amz-Security-Token"] == "TOKEN"
    assert (
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"
        in (headers["Authorization"])
    )
    assert headers["X-Amz-Content-Sha256"] == (
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )


def test_encoded_path_segments_are_encoded_again_and_body_changes_signature() -> None:
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/a.b-v1%3A0/converse"
    colon = _suite("POST", url, b"{}")
    other = _suite("POST", url.replace("%3A", ":"), b"{}")
    body = _suite("POST", url, b"{ }")
    assert colon["Authorization"] != other["Authorization"]
    assert colon["Authorization"] != body["Authorization"]
    assert sigv4._canonical_uri("/model/a.b-v1%3A0/converse", "bedrock") == (
        "/model/a.b-v1%253A0/converse"
    )
