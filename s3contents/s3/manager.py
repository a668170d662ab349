"""``S3ContentsManager``: Jupyter contents in AWS S3 or any S3-compatible server.

Declares the settings of the old ``s3contents`` package (same names, same environment
variables, both the ``JPY_S3_*`` and the older ``JPYNB_S3_*`` spellings) and builds the
aiobotocore adapter from them. Everything else is the shared manager.
"""

from __future__ import annotations

import ast
import json
import logging
import os
from typing import Any
from urllib.parse import urlparse

from traitlets import Any as AnyTrait
from traitlets import Bool, Int, TraitError, Unicode, default, validate

from .. import redact
from ..hubnames import expand_settings
from ..manager import ObjectStoreContentsManager
from .roles import RoleSettings, check_session_name, default_session_name, session_policy
from .storage import S3Storage

__all__ = ["S3ContentsManager", "validate_bucket"]

#: The old package's default endpoint; botocore picks the right regional endpoint itself.
_LEGACY_DEFAULT_ENDPOINT = "https://s3.amazonaws.com"


def _env(name: str) -> tuple[str, str]:
    return (f"JPY_S3_{name}", f"JPYNB_S3_{name}")


def validate_bucket(user_bucket: str, log: logging.Logger | Any) -> str:
    """The bucket name out of what a user configured.

    ``s3://bucket``, ``s3://bucket/key`` and ``bucket/key`` are understood as ``bucket``
    with a warning (the key part is ignored, as the old package did: set ``prefix`` for
    that); an access point ARN is kept whole. Raises ``ValueError`` when nothing usable
    is left.
    """
    if not user_bucket or not user_bucket.strip():
        raise ValueError("The bucket setting is empty: set S3ContentsManager.bucket")
    text = user_bucket.strip()
    if text.startswith("arn:"):
        return text
    if text.startswith("s3://arn:"):
        return text[len("s3://") :]
    res = urlparse(text)
    if res.scheme and res.scheme != "s3":
        raise ValueError(f"Invalid bucket specification {text!r}: only s3:// URLs are understood")
    if res.netloc:
        if res.path.strip("/"):
            log.warning(
                "Assuming you meant bucket %r (the key part %r is ignored; set prefix for "
                "it). Please set bucket=%r in your configuration.",
                res.netloc,
                res.path.strip("/"),
                res.netloc,
            )
        else:
            log.warning(
                "Assuming you meant bucket %r. Please set bucket=%r in your configuration.",
                res.netloc,
                res.netloc,
            )
        return res.netloc
    if res.params or res.query or res.fragment:
        raise ValueError(f"Invalid bucket specification: {text!r}")
    bucket = res.path
    if "/" not in bucket:
        return bucket
    bucket, key = bucket.split("/", 1)
    log.warning(
        "Assuming you meant bucket %r: don't include '/' in the bucket name (%r is "
        "ignored; set prefix for it). Please set bucket=%r in your configuration.",
        bucket,
        key,
        bucket,
    )
    if not bucket:
        raise ValueError(f"Invalid bucket specification: {text!r}")
    return bucket


class S3ContentsManager(ObjectStoreContentsManager):
    """Notebooks, files and folders in an S3 bucket (AWS, MinIO, SeaweedFS, Ceph...).

    Credentials: ``access_key_id``/``secret_access_key`` (and ``session_token``) when
    given; otherwise ``boto3_session`` when set (directly or by ``init_s3_hook``);
    otherwise the AWS default chain: environment, shared config/profile, web identity,
    container and instance roles. With ``role_arn``, those credentials assume that role
    for credentials scoped to the prefix (:mod:`s3contents.s3.roles`).
    """

    access_key_id = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""AWS access key id. Default: None (use the AWS credential chain).
        Environment variable: JPY_S3_ACCESS_KEY_ID.""",
    ).tag(env=_env("ACCESS_KEY_ID"))

    secret_access_key = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""AWS secret access key; never logged. Default: None.
        Environment variable: JPY_S3_SECRET_ACCESS_KEY.""",
    ).tag(env=_env("SECRET_ACCESS_KEY"))

    session_token = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""AWS session token for temporary credentials; never logged. Default: None.
        Environment variable: JPY_S3_SESSION_TOKEN.""",
    ).tag(env=_env("SESSION_TOKEN"))

    anon = Bool(
        False,
        config=True,
        help="""Send unsigned (anonymous) requests, for public buckets. Default: False.
        Environment variable: JPY_S3_ANON.""",
    ).tag(env=_env("ANON"))

    lean_requests = Bool(
        True,
        config=True,
        help="""Send the frequent requests (HEAD, GET, PUT, COPY, DELETE, LIST of objects)
        through s3contents' own Signature V4 client on aiohttp, at about a third of
        botocore's CPU per request; botocore still resolves the endpoint and credentials and
        sends everything else. False: every request through aiobotocore. Default: True.
        Environment variable: JPY_S3_LEAN_REQUESTS.""",
    ).tag(env=_env("LEAN_REQUESTS"))

    bucket = Unicode(
        "notebooks",
        config=True,
        help="""Bucket that holds the notebooks. ``s3://bucket`` is accepted with a
        warning; an access point ARN is used as is. Default: 'notebooks'.
        Environment variable: JPY_S3_BUCKET.""",
    ).tag(env=_env("BUCKET"))

    prefix = Unicode(
        "",
        config=True,
        help="""Key prefix inside the bucket that is the root of the Jupyter tree
        (e.g. 'users/alice'). Under JupyterHub, '{username}' and '{servername}' are filled
        in, escaped to one key segment each (e.g. 'users/{username}'), also in ``bucket``.
        Default: '' (the whole bucket).
        Environment variable: JPY_S3_PREFIX.""",
    ).tag(env=_env("PREFIX"))

    delimiter = Unicode(
        "/",
        config=True,
        help="""Separator between folder names in keys. Default: '/'.
        Environment variable: JPY_S3_DELIMITER.""",
    ).tag(env=_env("DELIMITER"))

    endpoint_url = Unicode(
        _LEGACY_DEFAULT_ENDPOINT,
        config=True,
        help="""S3 endpoint, for S3-compatible servers (e.g. 'http://127.0.0.1:9000').
        Default: AWS (the regional endpoint botocore picks).
        Environment variable: JPY_S3_ENDPOINT_URL.""",
    ).tag(env=_env("ENDPOINT_URL"))

    region_name = Unicode(
        "us-east-1",
        config=True,
        help="""AWS region of the bucket. Default: 'us-east-1'.
        Environment variable: JPY_S3_REGION_NAME.""",
    ).tag(env=_env("REGION_NAME"))

    signature_version = Unicode(
        "",
        config=True,
        help="""Request signature version (e.g. 's3v4'). Default: botocore's choice.
        Environment variable: JPY_S3_SIGNATURE_VERSION.""",
    ).tag(env=_env("SIGNATURE_VERSION"))

    sse = Unicode(
        "",
        config=True,
        help="""Server-side encryption of written objects: 'AES256' or 'aws:kms'.
        Default: none (the bucket's default). Environment variable: JPY_S3_SSE.""",
    ).tag(env=_env("SSE"))

    kms_key_id = Unicode(
        "",
        config=True,
        help="""KMS key id for 'aws:kms' encryption (implies sse='aws:kms' when sse is
        unset). Default: none. Environment variable: JPY_S3_KMS_KEY_ID.""",
    ).tag(env=_env("KMS_KEY_ID"))

    skip_tls_verify = Bool(
        False,
        config=True,
        help="""Do not verify the endpoint's TLS certificate (self-signed test servers
        only). Default: False. Environment variable: JPY_S3_SKIP_TLS_VERIFY.""",
    ).tag(env=_env("SKIP_TLS_VERIFY"))

    role_arn = Unicode(
        "",
        config=True,
        help="""IAM role to assume for credentials scoped to the prefix: the manager asks STS
        AssumeRole (with the credentials configured above, or the AWS chain: a pod's IRSA or
        EKS Pod Identity role, for instance) for credentials restricted by a session policy to
        ``bucket/prefix/`` (and the bucket's versioning, location and lifecycle settings), and
        refreshes them before they expire. AWS enforces the policy; S3-compatible servers
        ignore it. See docs/jupyterhub.md. Default: '' (sign with the configured
        credentials). Environment variable: JPY_S3_ROLE_ARN.""",
    ).tag(env=_env("ROLE_ARN"))

    role_session_name = Unicode(
        config=True,
        help="""Session name of the assumed role (shown in CloudTrail): 2 to 64 letters,
        digits or +=,.@_-. Default: 's3contents-' and the JupyterHub user (else the host
        name), other characters as '-'. Environment variable: JPY_S3_ROLE_SESSION_NAME.""",
    ).tag(env=_env("ROLE_SESSION_NAME"), doc_default="s3contents-{user or host}")

    role_duration_seconds = Int(
        3600,
        config=True,
        help="""Seconds the assumed role's credentials last (900 to the role's maximum
        session duration); they are refreshed a quarter of this (at most 15 minutes) before
        they expire. Default: 3600. Environment variable: JPY_S3_ROLE_DURATION_SECONDS.""",
    ).tag(env=_env("ROLE_DURATION_SECONDS"))

    role_external_id = Unicode(
        "",
        config=True,
        help="""External id the role's trust policy asks for (sts:ExternalId), if any; never
        logged. Default: none. Environment variable: JPY_S3_ROLE_EXTERNAL_ID.""",
    ).tag(env=_env("ROLE_EXTERNAL_ID"))

    sts_endpoint_url = Unicode(
        "",
        config=True,
        help="""STS endpoint for role_arn (e.g. a VPC endpoint). Default: botocore's STS
        endpoint for region_name. Environment variable: JPY_S3_STS_ENDPOINT_URL.""",
    ).tag(env=_env("STS_ENDPOINT_URL"))

    @default("role_session_name")
    def _default_role_session_name(self) -> str:
        return default_session_name(os.environ.get("JUPYTERHUB_USER"))

    @validate("role_session_name")
    def _validate_role_session_name(self, proposal: Any) -> str:
        try:
            return check_session_name(str(proposal["value"]))
        except ValueError as err:
            raise TraitError(str(err)) from err

    init_s3_hook = AnyTrait(
        None,
        allow_none=True,
        config=True,
        help="""Callable (or import string) called as ``hook(contents_manager)`` when the
        manager starts, before it connects; it may set ``boto3_session`` (for example to
        a session with refreshable credentials, see the README) or other settings.
        Default: None.""",
    )

    boto3_session = AnyTrait(
        None,
        allow_none=True,
        help="""Session to connect with, usually set by ``init_s3_hook``: an aiobotocore
        ``AioSession`` (used as is, refreshable credentials included), or a boto3 /
        botocore session, whose profile, region and credentials are carried over.
        Default: None.""",
    )

    s3fs_additional_kwargs = AnyTrait(
        None,
        allow_none=True,
        config=True,
        help="""Extra arguments for requests that write objects, as the old package
        passed them to s3fs (e.g. {"ACL": "bucket-owner-full-control", "StorageClass":
        "STANDARD_IA"}); each request gets those its S3 API accepts, and unknown names
        fail at start. Default: None. Environment variable (JSON):
        JPY_S3_S3FS_ADDITIONAL_KWARGS.""",
    ).tag(env=_env("S3FS_ADDITIONAL_KWARGS"), env_json=True)

    s3fs_config_kwargs = AnyTrait(
        None,
        allow_none=True,
        config=True,
        help="""botocore ``Config`` arguments, as the old package passed them to s3fs
        (e.g. {"s3": {"addressing_style": "path"}, "read_timeout": 120}). Default: None.
        Environment variable (JSON): JPY_S3_S3FS_CONFIG_KWARGS.""",
    ).tag(env=_env("S3FS_CONFIG_KWARGS"), env_json=True)

    @validate("init_s3_hook")
    def _validate_init_s3_hook(self, proposal: Any) -> Any:
        return self._callable_or_import(proposal["value"], "init_s3_hook")

    @staticmethod
    def _callable_or_import(value: Any, name: str) -> Any:
        if isinstance(value, str):
            from jupyter_server.utils import import_item

            value = import_item(value)
        if value is not None and not callable(value):
            raise TraitError(f"{name} must be callable")
        return value

    @validate("s3fs_additional_kwargs", "s3fs_config_kwargs")
    def _validate_dicts(self, proposal: Any) -> Any:
        value = proposal["value"]
        if isinstance(value, str):
            # From a command line (--S3ContentsManager.s3fs_config_kwargs='{...}'): JSON or
            # a Python literal.
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                try:
                    value = ast.literal_eval(value)
                except (ValueError, SyntaxError) as err:
                    raise TraitError(
                        f"{proposal['trait'].name} must be a dictionary (JSON), not {value!r}"
                    ) from err
        if value is not None and not isinstance(value, dict):
            raise TraitError(
                f"{proposal['trait'].name} must be a dictionary or None, not {type(value).__name__}"
            )
        return value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.init_s3_hook is not None:
            self.init_s3_hook(self)
        expand_settings(self, os.environ)
        self.bucket = validate_bucket(self.bucket, self.log)
        # Build the adapter now so a setting that cannot be honoured fails at start.
        self.storage = self._build_storage()

    # -- provider hooks -------------------------------------------------------------------
    def _key_prefix(self) -> str:
        return self.prefix

    def _key_delimiter(self) -> str:
        return self.delimiter

    def _build_storage(self) -> S3Storage:
        redact.install()
        redact.protect(self.access_key_id, keep=4)
        redact.protect(self.secret_access_key)
        redact.protect(self.session_token)
        client_kwargs: dict[str, Any] = {}
        endpoint = (self.endpoint_url or "").strip()
        if endpoint and endpoint.rstrip("/") != _LEGACY_DEFAULT_ENDPOINT:
            if not urlparse(endpoint).scheme:
                endpoint = "https://" + endpoint
            client_kwargs["endpoint_url"] = endpoint
        if self.region_name:
            client_kwargs["region_name"] = self.region_name
        if self.skip_tls_verify:
            client_kwargs["verify"] = False
        session = self._session()
        keys: tuple[str, str, str | None] | None = None
        if self.access_key_id or self.secret_access_key:
            if not (self.access_key_id and self.secret_access_key):
                raise TraitError(
                    "access_key_id and secret_access_key must be given together "
                    "(or neither, to use the AWS credential chain)"
                )
            keys = (self.access_key_id, self.secret_access_key, self.session_token or None)
        role_arn = (self.role_arn or "").strip()
        if keys is not None and not role_arn:
            client_kwargs["aws_access_key_id"] = keys[0]
            client_kwargs["aws_secret_access_key"] = keys[1]
            if keys[2]:
                client_kwargs["aws_session_token"] = keys[2]

        config_kwargs = dict(self.s3fs_config_kwargs or {})
        if self.signature_version:
            config_kwargs["signature_version"] = self.signature_version
        write_kwargs = dict(self.s3fs_additional_kwargs or {})
        if self.sse:
            write_kwargs["ServerSideEncryption"] = self.sse
        if self.kms_key_id:
            write_kwargs.setdefault("ServerSideEncryption", "aws:kms")
            write_kwargs["SSEKMSKeyId"] = self.kms_key_id
        _check_write_kwargs(write_kwargs)
        _check_config_kwargs(config_kwargs)
        role = self._role(role_arn, keys, client_kwargs, write_kwargs) if role_arn else None
        return S3Storage(
            self.bucket,
            session=session,
            client_kwargs=client_kwargs,
            config_kwargs=config_kwargs,
            write_kwargs=write_kwargs,
            anon=self.anon,
            max_concurrency=self.max_concurrency,
            lean=self.lean_requests,
            role=role,
        )

    def _role(
        self,
        role_arn: str,
        keys: tuple[str, str, str | None] | None,
        client_kwargs: dict[str, Any],
        write_kwargs: dict[str, Any],
    ) -> RoleSettings:
        """What to assume for ``role_arn``, with the session policy of bucket and prefix."""
        if self.anon:
            raise TraitError("role_arn and anon exclude each other")
        if not 900 <= self.role_duration_seconds <= 43200:
            raise TraitError("role_duration_seconds must be between 900 and 43200")
        redact.protect(self.role_external_id)
        region = self.region_name or "us-east-1"
        root = self.keys.prefix
        try:
            policy = session_policy(
                self.bucket,
                root,
                delimiter=self.delimiter,
                region=region,
                acl="ACL" in write_kwargs or any(k.startswith("Grant") for k in write_kwargs),
                tagging="Tagging" in write_kwargs,
            )
        except ValueError as err:
            raise TraitError(str(err)) from err
        endpoint = (self.sts_endpoint_url or "").strip()
        if endpoint and not urlparse(endpoint).scheme:
            endpoint = "https://" + endpoint
        return RoleSettings(
            role_arn=role_arn,
            session_name=self.role_session_name,
            policy=policy,
            duration=self.role_duration_seconds,
            external_id=self.role_external_id or None,
            sts_endpoint_url=endpoint or None,
            region=region,
            probe_prefix=self.keys.root,
            source_keys=keys,
            client_kwargs={k: v for k, v in client_kwargs.items() if k == "verify"},
        )

    def _session(self) -> Any:
        from aiobotocore.session import AioSession

        given = self.boto3_session
        if given is None or isinstance(given, AioSession):
            return given
        # A boto3.Session wraps a botocore session; take its profile and credentials.
        core = getattr(given, "_session", given)
        if not hasattr(core, "get_credentials"):
            raise TraitError(
                "boto3_session must be an aiobotocore AioSession or a boto3/botocore "
                f"session, not {type(given).__name__}"
            )
        session = AioSession(profile=core.profile if core.profile != "default" else None)
        creds = core.get_credentials()
        if creds is not None:
            frozen = creds.get_frozen_credentials()
            redact.protect(frozen.access_key, keep=4)
            redact.protect(frozen.secret_key)
            redact.protect(frozen.token)
            session.set_credentials(frozen.access_key, frozen.secret_key, frozen.token)
            self.log.warning(
                "boto3_session is a synchronous session: its current credentials are used "
                "and will not refresh. For rotating keys, give an aiobotocore AioSession."
            )
        return session


def _check_write_kwargs(write_kwargs: dict[str, Any]) -> None:
    """Refuse extra write arguments that no write request of S3 accepts."""
    if not write_kwargs:
        return
    import botocore.session

    model = botocore.session.get_session().get_service_model("s3")
    accepted: set[str] = set()
    for op in ("PutObject", "CopyObject", "CreateMultipartUpload"):
        accepted.update(model.operation_model(op).input_shape.members)
    unknown = sorted(set(write_kwargs) - accepted - {"Bucket", "Key", "Body"})
    if unknown:
        raise TraitError(
            f"s3fs_additional_kwargs: S3 write requests accept no argument named {unknown}"
        )


def _check_config_kwargs(config_kwargs: dict[str, Any]) -> None:
    from aiobotocore.config import AioConfig

    try:
        AioConfig(**config_kwargs)
    except TypeError as err:
        raise TraitError(f"s3fs_config_kwargs: {err}") from err
