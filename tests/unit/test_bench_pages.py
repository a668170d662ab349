"""The benchmarks' ``--aws-pages`` rewrite: a ListObjectsV2 asking for more than 1000 keys is
capped at 1000 and signed again, exactly as botocore would have signed the capped request."""

from __future__ import annotations

import datetime
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from benchmarks.pages import cap_list_pages
from tests.support.http_relay import Head

SECRET = "bench-secret"
HOST = "127.0.0.1:9000"


def _signed_head(max_keys: int) -> Head:
    url = f"http://{HOST}/bucket?list-type=2&prefix=a%2Fb%20c%2F&delimiter=%2F&max-keys={max_keys}"
    request = AWSRequest(method="GET", url=url, headers={"Host": HOST})
    fixed = datetime.datetime(2026, 12, 6, 10, 0, 0)
    with mock.patch("botocore.auth.datetime") as clock:
        clock.datetime.utcnow.return_value = fixed
        clock.datetime.now.return_value = fixed
        S3SigV4Auth(Credentials("AK", SECRET), "s3", "us-east-1").add_auth(request)
    prepared = request.prepare()
    target = prepared.url.split(HOST, 1)[1]
    lines = [f"GET {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in prepared.headers.items()]
    return Head(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def test_capped_and_signed_as_botocore_signs_the_capped_request():
    asked, expected = _signed_head(5000), _signed_head(1000)
    rewritten = cap_list_pages(SECRET)(asked)
    assert "max-keys=1000" in rewritten.start[1]
    assert rewritten.headers["authorization"] == expected.headers["authorization"]


def test_small_pages_and_other_requests_pass_unchanged():
    small = _signed_head(1000)
    assert cap_list_pages(SECRET)(small) is small
    put = Head(b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\n\r\n")
    assert cap_list_pages(SECRET)(put) is put
