"""The settings of the bucket managers, and how the environment sets them.

:class:`BucketSettings` declares the settings every bucket manager has (each provider adds
its own in its ``manager.py``), once each, with help naming its default and environment
variable. A trait declared ``.tag(config=True, env=("JPY_S3_BUCKET", "JPYNB_S3_BUCKET"))``
takes the first of those variables that is set, unless Jupyter's configuration (or a
keyword argument) already gave it a value: configuration files win over the environment,
the environment wins over the default.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from jupyter_server.services.contents.manager import AsyncContentsManager
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Enum, Float, Int, TraitError, TraitType, Type, default, validate
from traitlets.config import Configurable

from .claims import LEASE_SECONDS
from .contents import preferred_dir
from .hooks import hook_setting
from .paths import normalize_api_path

__all__ = ["BucketSettings", "apply_environment", "configured_names", "parse_env_value"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_env_value(trait: TraitType[Any, Any], var: str, raw: str) -> Any:
    """Convert the text of environment variable ``var`` to ``trait``'s type."""
    if isinstance(trait, Bool):
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise TraitError(f"{var} must be true or false, not {raw!r}")
    if isinstance(trait, Int):
        try:
            return int(raw)
        except ValueError as err:
            raise TraitError(f"{var} must be an integer, not {raw!r}") from err
    if isinstance(trait, Float):
        try:
            return float(raw)
        except ValueError as err:
            raise TraitError(f"{var} must be a number, not {raw!r}") from err
    if isinstance(trait, Dict) or trait.metadata.get("env_json"):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            raise TraitError(f"{var} must be a JSON object: {err}") from err
        if not isinstance(value, dict):
            raise TraitError(f"{var} must be a JSON object")
        return value
    return raw


def configured_names(obj: Configurable, kwargs: dict[str, Any]) -> set[str]:
    """Traits given a value by keyword arguments or by Jupyter's configuration."""
    names = set(kwargs)
    for section in obj.section_names():
        if section in obj.config:
            names.update(obj.config[section].keys())
    return names


def apply_environment(obj: Configurable, explicit: set[str]) -> dict[str, str]:
    """Set the traits of ``obj`` not in ``explicit`` from their environment variables.

    ``explicit`` names the traits configured otherwise (see :func:`configured_names`);
    traitlets stores static defaults at construction, so "has a value" cannot tell.
    Returns ``{trait: variable}`` for the traits set this way (for start-up logs; values
    are never logged).
    """
    used: dict[str, str] = {}
    for name, trait in obj.traits().items():
        names = trait.metadata.get("env")
        if not names or name in explicit:
            continue
        if isinstance(names, str):
            names = (names,)
        for var in names:
            raw = os.environ.get(var)
            if raw is None:
                continue
            obj.set_trait(name, parse_env_value(trait, var, raw))
            used[name] = var
            break
    return used


class BucketSettings(AsyncContentsManager):
    """The settings of every bucket manager (base of
    :class:`s3contents.manager.ObjectStoreContentsManager`); nothing else."""

    post_save_hook = AnyTrait(
        None,
        config=True,
        allow_none=True,
        help="""Python callable or importstring naming one, called after each save.

        Called as ``hook(model=model, s3_path=s3_path, contents_manager=self)``, where
        ``s3_path`` is the API path of the file just written (without bucket or prefix)
        and ``model`` the saved model without content. It runs in a worker thread, so it
        may block (nbconvert, for instance) without stalling the server, and may use the
        synchronous ``contents_manager.fs.read(path, format=...)`` and
        ``contents_manager.fs.write(path=..., content=..., format=...)``. A hook that
        raises makes the request answer 500 after the file was saved, as in Jupyter.
        Default: None.
        """,
    )

    @validate("post_save_hook")
    def _validate_post_save_hook(self, proposal: Any) -> Any:
        try:
            return hook_setting(proposal["value"])
        except TypeError as err:
            raise TraitError("post_save_hook must be callable") from err

    max_concurrency = Int(
        32,
        config=True,
        help="""Storage requests one folder rename, copy or delete runs at once.
        Default: 32. Environment variable: S3CONTENTS_MAX_CONCURRENCY.""",
    ).tag(env="S3CONTENTS_MAX_CONCURRENCY")

    upload_part_size = Int(
        8 * 1024 * 1024,
        config=True,
        help="""Bytes buffered per chunked upload before they are sent as one multipart
        part; bounds the memory each upload holds. At least 5 MiB. Default: 8 MiB.
        Environment variable: S3CONTENTS_UPLOAD_PART_SIZE.""",
    ).tag(env="S3CONTENTS_UPLOAD_PART_SIZE")

    request_timeout = Float(
        60.0,
        config=True,
        help="""Seconds one storage request may take, retries included, before the
        operation fails with 503 (storage unavailable) instead of keeping the client
        waiting. 0 means no limit beyond the SDK's own connect and read timeouts. Default:
        60. Environment variable: S3CONTENTS_REQUEST_TIMEOUT.""",
    ).tag(env="S3CONTENTS_REQUEST_TIMEOUT")

    rename_lease = Float(
        LEASE_SECONDS,
        config=True,
        help="""Seconds a folder rename's claim on its two folders stays valid unless its
        server renews it (every third of it, while the rename runs). Another server may
        resume a rename whose claim ran out, so after a server was killed mid-rename, the
        rename can be completed after this long. Default: 30. Environment variable:
        S3CONTENTS_RENAME_LEASE.""",
    ).tag(env="S3CONTENTS_RENAME_LEASE")

    upload_timeout = Float(
        600.0,
        config=True,
        help="""Seconds after which a chunked upload that stopped receiving chunks is
        aborted and its parts freed in the bucket. Uploads under the prefix left behind by a
        process that died (begun, and given their last part, longer ago than this) are
        aborted when a Jupyter server starts and every this many seconds. Default: 600.
        Environment variable: S3CONTENTS_UPLOAD_TIMEOUT.""",
    ).tag(env="S3CONTENTS_UPLOAD_TIMEOUT")

    delete_to_trash = Bool(
        False,
        config=True,
        help="""Object storage has no trash, so this is False: JupyterLab and Notebook 7
        read it to word their delete command ("Delete", "permanently delete" when False,
        "Move to Trash" when True), and a deletion is for good (on a versioned bucket the
        objects' earlier versions remain, see History). When True, folders that are not
        empty are deleted too, as before. Default: False.""",
    )

    always_delete_dir = Bool(
        True,
        config=True,
        help="""Delete folders with everything in them. When False (and
        ``delete_to_trash`` is False), deleting a folder that is not empty is refused (400),
        as in Jupyter's local manager without a trash. Default: True.""",
    )

    hash_algorithm = Enum(
        sorted(hashlib.algorithms_available),
        default_value="sha256",
        config=True,
        help="""Hash algorithm of the ``hash`` field of models asked for with
        ``require_hash``, as in Jupyter's local manager. Default: 'sha256'.""",
    )

    files_handler_class = Type(  # type: ignore[assignment]
        default_value="s3contents.handlers.StreamingFilesHandler",
        klass="tornado.web.RequestHandler",
        allow_none=True,
        config=True,
        help="""Handler of /files/ downloads: streams the object from the bucket in
        pieces, with the right content type, never through local disk.""",
    )

    #: Name of the folder marker object.
    folder_marker = ".s3keep"

    @default("root_dir")
    def _default_root_dir(self) -> str:
        # Nothing is read from this folder; it mirrors the server's own root_dir because
        # frontends (Notebook 7's tree) take the server's preferred_dir relative to it.
        return str(getattr(self.parent, "root_dir", "") or "/")

    @validate("preferred_dir")
    def _validate_preferred_dir(self, proposal: Any) -> str:
        return preferred_dir(self, proposal["value"], normalize_api_path)
