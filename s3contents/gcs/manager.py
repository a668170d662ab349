"""``GCSContentsManager``: Jupyter contents in a Google Cloud Storage bucket.

Declares the settings of the old ``s3contents`` package's GCS manager (same names, same
``JPYNB_GCS_*`` environment variables, plus ``JPY_GCS_*`` twins) and ``endpoint_url`` for
emulators and private endpoints, and builds the GCS adapter from them. Everything else is
the shared manager.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from traitlets import TraitError, Unicode

from .. import redact
from ..hubnames import expand_settings
from ..manager import ObjectStoreContentsManager
from .storage import GCSStorage

__all__ = ["GCSContentsManager", "resolve_token", "validate_gcs_bucket"]

#: Token strings gcsfs understands as a method rather than a file or a raw token.
TOKEN_METHODS = frozenset({"anon", "google_default", "cloud", "cache", "browser"})


def _env(name: str, *more: str) -> tuple[str, ...]:
    return (f"JPY_GCS_{name}", f"JPYNB_GCS_{name}", *more)


def resolve_token(token: str | None) -> str:
    """What to hand gcsfs as ``token`` for the ``token`` setting.

    None or empty: Google's default credentials (``"google_default"``). One of gcsfs's
    method names (``"anon"``, ``"google_default"``, ``"cloud"``...) is kept. Anything else
    is a path to a credentials JSON file (``~`` expanded), which must exist: a missing file
    would otherwise be taken for a raw access token and fail later with a vaguer error.
    """
    if token is None or not token.strip():
        return "google_default"
    text = token.strip()
    if text in TOKEN_METHODS:
        return text
    path = os.path.expanduser(text)
    if not os.path.isfile(path):
        raise TraitError(
            f"GCSContentsManager.token: no credentials file at {path!r} (give a path to a "
            "service-account or authorized-user JSON file, or one of "
            f"{sorted(TOKEN_METHODS)})"
        )
    return path


def validate_gcs_bucket(user_bucket: str) -> str:
    """The bucket name out of ``bucket``: ``gs://bucket`` is accepted; a path part is not."""
    text = (user_bucket or "").strip()
    if text.startswith("gs://"):
        text = urlparse(text).netloc
    if not text or "/" in text:
        raise TraitError(
            f"GCSContentsManager.bucket: {user_bucket!r} is not a bucket name (set prefix "
            "for a folder inside the bucket)"
        )
    return text


class GCSContentsManager(ObjectStoreContentsManager):
    """Notebooks, files and folders in a Google Cloud Storage bucket.

    Credentials: ``token`` when given (a credentials JSON file, or ``"anon"``, ``"cloud"``,
    ``"google_default"``); otherwise Google's default credentials
    (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application-default login, the metadata
    server on Google Cloud).
    """

    #: GCS's folder marker, as the old package wrote it.
    folder_marker = ".gcskeep"

    project = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Google Cloud project of the bucket; with Google's default credentials it
        must match theirs. Default: None (the credentials' own).
        Environment variable: JPY_GCS_PROJECT or JPYNB_GCS_PROJECT.""",
    ).tag(env=_env("PROJECT"))

    token = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Path to a credentials JSON file (service account or authorized user; '~'
        is expanded), or one of gcsfs's methods: 'anon' (no credentials, for emulators and
        public buckets), 'google_default', 'cloud' (the metadata server). Never logged.
        Default: None (Google's default credentials). Environment variable:
        JPY_GCS_TOKEN_PATH or JPYNB_GCS_TOKEN_PATH.""",
    ).tag(env=_env("TOKEN_PATH"))

    bucket = Unicode(
        "notebooks",
        config=True,
        help="""Bucket that holds the notebooks ('gs://bucket' is accepted).
        Default: 'notebooks'. Environment variable: JPY_GCS_BUCKET or JPYNB_GCS_BUCKET.""",
    ).tag(env=_env("BUCKET"))

    prefix = Unicode(
        "",
        config=True,
        help="""Object name prefix inside the bucket that is the root of the Jupyter tree
        (e.g. 'users/alice'). Under JupyterHub, '{username}' and '{servername}' are filled
        in, escaped to one name segment each (e.g. 'users/{username}'), also in ``bucket``.
        Default: '' (the whole bucket).
        Environment variable: JPY_GCS_PREFIX or JPYNB_GCS_PREFIX.""",
    ).tag(env=_env("PREFIX"))

    separator = Unicode(
        "/",
        config=True,
        help="""Separator between folder names in object names (the old package's name
        for the delimiter). Default: '/'.
        Environment variable: JPY_GCS_SEPARATOR or JPYNB_GCS_SEPARATOR.""",
    ).tag(env=_env("SEPARATOR"))

    region_name = Unicode(
        "",
        config=True,
        help="""Accepted for compatibility with the old package's configuration; unused
        (a GCS bucket has its own location, requests do not name it). Default: ''.
        Environment variable: JPY_GCS_REGION_NAME or JPYNB_GCS_REGION_NAME.""",
    ).tag(env=_env("REGION_NAME"))

    endpoint_url = Unicode(
        "",
        config=True,
        help="""Root URL of the GCS JSON API, for emulators (e.g. fake-gcs-server at
        'http://127.0.0.1:4443') and private endpoints. Default: '' (the
        STORAGE_EMULATOR_HOST environment variable when set, else Google's endpoint).
        Environment variable: JPY_GCS_ENDPOINT_URL or JPYNB_GCS_ENDPOINT_URL.""",
    ).tag(env=_env("ENDPOINT_URL"))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        expand_settings(self, os.environ)
        self.bucket = validate_gcs_bucket(self.bucket)
        # Build the adapter now so credentials that cannot be used fail at start.
        self.storage = self._build_storage()

    # -- provider hooks -------------------------------------------------------------------
    def _key_prefix(self) -> str:
        return self.prefix

    def _key_delimiter(self) -> str:
        return self.separator

    def _build_storage(self) -> GCSStorage:
        endpoint = (self.endpoint_url or "").strip().rstrip("/")
        if endpoint and not urlparse(endpoint).scheme:
            endpoint = "https://" + endpoint
        token = resolve_token(self.token)
        redact.install()
        if token not in TOKEN_METHODS:
            redact.protect_json_file(token)
        return GCSStorage(
            self.bucket,
            project=self.project or "",
            token=token,
            endpoint_url=endpoint or None,
            max_concurrency=self.max_concurrency,
        )
