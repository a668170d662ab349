"""Credentials scoped to the prefix: an assumed role with a session policy (provider layer).

With ``role_arn`` set, the S3 adapter signs with temporary credentials from STS
``AssumeRole``, asked with the session's own credentials (the AWS chain, or the configured
keys) and a *session policy* (:func:`session_policy`) that allows only what the manager does
under ``bucket/prefix/``. AWS grants the intersection of the role's own policies and the
session policy, so even a role allowed the whole bucket signs requests that reach only this
prefix. The enforcement is AWS's: S3-compatible servers and moto accept the credentials and
ignore the policy.

The credentials are botocore's refreshable ones (aiobotocore's, refreshed by an awaited STS
call, never on a blocking thread), with refresh margins scaled to the duration: an
advisory refresh (one request refreshes, the others go on with the current credentials) a
quarter of the duration before expiry, at most 15 minutes, as botocore's default; a
mandatory one (every request waits) a tenth before, at most 10 minutes. botocore's fixed 15
and 10 minutes would refresh credentials of 15 minutes (STS's shortest) on every request.
"""

from __future__ import annotations

import copy
import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError

from .. import redact
from ..errors import Forbidden, Unavailable

__all__ = [
    "MAX_POLICY_CHARS",
    "RoleSettings",
    "default_session_name",
    "role_session",
    "session_policy",
]

#: STS refuses a session policy longer than this (its plain text, without white space).
MAX_POLICY_CHARS = 2048
#: The session name STS accepts: 2 to 64 of these characters.
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]", re.ASCII)
#: Characters IAM reads as wildcards or variables in a resource or a ``StringLike`` value,
#: written as the policy variables that stand for them literally.
_IAM_SPECIAL = {"*": "${*}", "?": "${?}", "$": "${$}"}


def _literal(text: str) -> str:
    return "".join(_IAM_SPECIAL.get(ch, ch) for ch in text)


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def session_policy(
    bucket: str,
    prefix: str,
    *,
    delimiter: str = "/",
    region: str = "us-east-1",
    acl: bool = False,
    tagging: bool = False,
) -> str:
    """The session policy (compact JSON) that allows the manager's requests under
    ``bucket/prefix`` and nothing else; the whole bucket when ``prefix`` is empty.

    - objects under the prefix: read, write, delete (their versions too: history), abort a
      multipart upload and list its parts; ``s3:PutObjectAcl`` / ``s3:PutObjectTagging``
      only when ``acl`` / ``tagging`` (extra write arguments that need them);
    - listings (objects, versions, multipart uploads) of the bucket only with an
      ``s3:prefix`` under the prefix (the manager lists ``prefix/`` and below, never the
      bucket's root);
    - the bucket's versioning, location and lifecycle rules (``s3contents doctor``);
    - KMS data keys through S3 of the region only, for SSE-KMS objects (the role's own
      policies and the key's policy still decide which keys).

    ``*``, ``?`` and ``$`` in the bucket or prefix are matched literally. Raises
    ``ValueError`` when the policy would pass :data:`MAX_POLICY_CHARS`.
    """
    partition = _partition(region)
    root = delimiter.join(p for p in prefix.split(delimiter) if p)
    root = root + delimiter if root else ""
    if bucket.startswith("arn:"):  # an access point: objects are "<arn>/object/<key>"
        bucket_arn = _literal(bucket)
        objects_arn = f"{bucket_arn}/object/{_literal(root)}*"
    else:
        bucket_arn = f"arn:{partition}:s3:::{_literal(bucket)}"
        objects_arn = f"{bucket_arn}/{_literal(root)}*"
    object_actions = [
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    ]
    if acl:
        object_actions.append("s3:PutObjectAcl")
    if tagging:
        object_actions += ["s3:GetObjectTagging", "s3:PutObjectTagging"]
    listing: dict[str, Any] = {
        "Effect": "Allow",
        "Action": ["s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"],
        "Resource": bucket_arn,
    }
    if root:
        listing["Condition"] = {"StringLike": {"s3:prefix": f"{_literal(root)}*"}}
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": object_actions, "Resource": objects_arn},
        listing,
        {
            "Effect": "Allow",
            "Action": [
                "s3:GetBucketVersioning",
                "s3:GetBucketLocation",
                "s3:GetLifecycleConfiguration",
            ],
            "Resource": bucket_arn,
        },
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        },
    ]
    text = json.dumps(
        {"Version": "2012-10-17", "Statement": statements},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    if len(text) > MAX_POLICY_CHARS:
        raise ValueError(
            f"The session policy for role_arn would be {len(text)} characters, over STS's "
            f"{MAX_POLICY_CHARS}: use a shorter bucket or prefix"
        )
    return text


def default_session_name(user: str | None = None) -> str:
    """``s3contents-<JupyterHub user or host name>``, made valid for STS (``[\\w+=,.@-]``,
    at most 64 characters)."""
    who = user or socket.gethostname() or "server"
    return _SESSION_NAME_BAD.sub("-", f"s3contents-{who}")[:64]


def check_session_name(name: str) -> str:
    """``name`` when STS accepts it as a role session name, else ``ValueError``."""
    if not _SESSION_NAME.fullmatch(name):
        raise ValueError(
            f"role_session_name {name!r} is not valid: 2 to 64 letters, digits or +=,.@_-"
        )
    return name


@dataclass(frozen=True)
class RoleSettings:
    """What to assume and how. The source keys (when the configuration gives them) are
    kept out of ``repr``; the policy is no secret."""

    role_arn: str
    session_name: str
    policy: str
    duration: int = 3600
    external_id: str | None = field(default=None, repr=False)
    sts_endpoint_url: str | None = None
    region: str | None = None
    #: Listing prefix that shows the bucket exists under this policy (its ``HeadBucket``
    #: needs ``s3:ListBucket`` without a prefix, which the policy does not allow).
    probe_prefix: str = ""
    source_keys: tuple[str, str, str | None] | None = field(default=None, repr=False)
    client_kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The clock the expiry is compared with (tests move it forward).
    clock: Callable[[], datetime] | None = field(default=None, repr=False, compare=False)

    @property
    def advisory_margin(self) -> float:
        return min(15 * 60.0, self.duration / 4)

    @property
    def mandatory_margin(self) -> float:
        return min(10 * 60.0, self.duration / 10)

    def describe(self) -> str:
        """The role and its session name, for ``doctor`` (no key)."""
        return (
            f"role {self.role_arn} (session {self.session_name}, scoped by a session "
            f"policy; credentials of {self.duration} s refreshed "
            f"{self.advisory_margin / 60:g} min before expiry)"
        )


async def _assume(source: AioSession, role: RoleSettings) -> dict[str, Any]:
    """One ``AssumeRole``: the credentials as botocore's refresh metadata."""
    kwargs: dict[str, Any] = dict(role.client_kwargs)
    if role.sts_endpoint_url:
        kwargs["endpoint_url"] = role.sts_endpoint_url
    if role.region:
        kwargs["region_name"] = role.region
    if role.source_keys is not None:
        key, secret, token = role.source_keys
        kwargs.update(aws_access_key_id=key, aws_secret_access_key=secret)
        if token:
            kwargs["aws_session_token"] = token
    params: dict[str, Any] = {
        "RoleArn": role.role_arn,
        "RoleSessionName": role.session_name,
        "DurationSeconds": role.duration,
        "Policy": role.policy,
    }
    if role.external_id:
        params["ExternalId"] = role.external_id
    config = AioConfig(
        retries={"mode": "standard", "max_attempts": 4}, connect_timeout=10, read_timeout=30
    )
    try:
        async with source.create_client("sts", config=config, **kwargs) as sts:
            answer = await sts.assume_role(**params)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", "")) or "error"
        raise Forbidden(f"Could not assume {role.role_arn} ({code})") from err
    except (BotoCoreError, OSError) as err:
        raise Unavailable(f"Could not assume {role.role_arn} ({type(err).__name__})") from err
    creds = answer["Credentials"]
    redact.protect(creds["AccessKeyId"], keep=4)
    redact.protect(creds["SecretAccessKey"])
    redact.protect(creds["SessionToken"])
    return {
        "access_key": creds["AccessKeyId"],
        "secret_key": creds["SecretAccessKey"],
        "token": creds["SessionToken"],
        "expiry_time": creds["Expiration"].isoformat(),
    }


async def role_session(source: AioSession, role: RoleSettings) -> AioSession:
    """A copy of ``source`` (same profile and configuration) whose credentials are the
    role's, refreshed before they expire; the first ``AssumeRole`` is made now."""

    async def refresh() -> dict[str, Any]:
        return await _assume(source, role)

    extra: dict[str, Any] = {}
    if role.clock is not None:
        extra["time_fetcher"] = role.clock
    metadata = await refresh()
    creds = AioRefreshableCredentials(
        access_key=metadata["access_key"],
        secret_key=metadata["secret_key"],
        token=metadata["token"],
        expiry_time=datetime.fromisoformat(metadata["expiry_time"]),
        refresh_using=refresh,
        method="assume-role-scoped",
        advisory_timeout=role.advisory_margin,
        mandatory_timeout=role.mandatory_margin,
        **extra,
    )
    session = copy.copy(source)
    session._credentials = creds
    return session
