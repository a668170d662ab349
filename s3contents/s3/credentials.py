"""Where the S3 adapter's credentials come from, in words for ``s3contents doctor``
(provider layer). The key itself is never shown whole (:func:`s3contents.redact.mask_key`).
"""

from __future__ import annotations

from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError

from ..errors import Forbidden
from ..redact import mask_key

__all__ = ["describe_session"]

#: botocore's name of each credential provider, as a person would say where the key is.
_CREDENTIAL_SOURCES = {
    "env": "the environment (AWS_ACCESS_KEY_ID)",
    "shared-credentials-file": "the shared credentials file (~/.aws/credentials)",
    "config-file": "the AWS config file (~/.aws/config)",
    "assume-role": "an assumed role (profile)",
    "assume-role-with-web-identity": "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)",
    "sso": "AWS SSO",
    "container-role": "the container's role",
    "iam-role": "the instance's IAM role",
    "explicit": "the session (boto3_session / init_s3_hook)",
    "custom-process": "a credential_process",
}


async def describe_session(session: AioSession) -> str:
    """``access key AKIA…XYZ from <source>`` for the credentials ``session`` resolves."""
    try:
        creds = await session.get_credentials()
    except BotoCoreError as err:
        raise Forbidden(f"Could not resolve AWS credentials ({type(err).__name__})") from err
    if creds is None:
        raise Forbidden("No AWS credentials found in the configuration or the AWS chain")
    frozen = await creds.get_frozen_credentials()
    method = getattr(creds, "method", None) or "session"
    source = _CREDENTIAL_SOURCES.get(method, method)
    return f"access key {mask_key(frozen.access_key)} from {source}"
