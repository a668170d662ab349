"""``--aws-pages``: listing pages capped at 1000 keys, as AWS S3 (and GCS) cap them.

SeaweedFS and moto honour a ``max-keys`` above 1000, which the new adapter asks for; AWS
answers at most 1000 keys a page whatever is asked.  :func:`cap_list_pages` makes a
:attr:`StorageProxy.rewrite <tests.support.proxy.StorageProxy.rewrite>` hook that turns the
``max-keys`` of a ListObjectsV2 request into ``min(asked, 1000)``.  The query is covered by the
request's SigV4 signature, so the hook signs the rewritten request again with the benchmark's
own keys (the headers signed, their values and the payload hash are the client's).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, quote

from tests.support.http_relay import Head

AWS_PAGE = 1000


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def cap_list_pages(secret_key: str, limit: int = AWS_PAGE) -> Callable[[Head], Head]:
    """A proxy rewrite hook capping ListObjectsV2 pages at ``limit`` keys, re-signed with
    ``secret_key``; other requests pass unchanged."""

    def rewrite(req: Head) -> Head:
        method, target, version = req.start[0], req.start[1], req.start[2]
        path, _, query = target.partition("?")
        if method.upper() != "GET" or not query:
            return req
        pairs = parse_qsl(query, keep_blank_values=True)
        asked = dict(pairs).get("max-keys")
        if dict(pairs).get("list-type") != "2" or asked is None or int(asked) <= limit:
            return req
        pairs = [(k, str(limit) if k == "max-keys" else v) for k, v in pairs]
        canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))
        auth = req.headers.get("authorization", "")
        found = re.match(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
            r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]+)",
            auth,
        )
        if not found:
            return req  # not SigV4-signed: forwarded as asked
        access, date, region, service, signed, _ = found.groups()
        names = signed.split(";")
        canonical_headers = "".join(
            f"{n}:{' '.join(req.headers.get(n, '').split())}\n" for n in names
        )
        payload = req.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        canonical = "\n".join([method, path, canonical_query, canonical_headers, signed, payload])
        scope = f"{date}/{region}/{service}/aws4_request"
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                req.headers.get("x-amz-date", ""),
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        signature = hmac.new(
            _key(secret_key, date, region, service), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, "
            f"Signature={signature}"
        )
        lines = req.raw.decode("latin-1").split("\r\n")
        lines[0] = f"{method} {path}?{canonical_query} {version}"
        for i, line in enumerate(lines[1:], 1):
            if line.partition(":")[0].strip().lower() == "authorization":
                lines[i] = f"Authorization: {authorization}"
        return Head("\r\n".join(lines).encode("latin-1"))

    return rewrite
