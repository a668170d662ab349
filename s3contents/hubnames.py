"""``{username}`` and ``{servername}`` in ``prefix`` and ``bucket``, from JupyterHub.

JupyterHub starts each user's server with ``JUPYTERHUB_USER`` (and, for a named server,
``JUPYTERHUB_SERVER_NAME``) in its environment, so one configuration serves every user:
``prefix = "users/{username}"``. A name becomes one key segment, escaped so that no name can
reach another user's keys: every character but ASCII letters, digits and ``-_@`` is written
``%XX`` (UTF-8 bytes; ``.`` too, so no name is ``.`` or ``..``, and ``/`` can never split it),
which maps different names to different segments. In a bucket name only names that are
already valid there (lower-case letters, digits, ``-``) are accepted: anything else would
need an escape that two names could share.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

__all__ = ["FIELDS", "HubNameError", "escape_segment", "expand", "expand_settings"]

#: Template fields and the environment variable each comes from.
FIELDS = {"username": "JUPYTERHUB_USER", "servername": "JUPYTERHUB_SERVER_NAME"}

_KEEP = frozenset(string.ascii_letters + string.digits + "-_@")
_BUCKET_SAFE = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


class HubNameError(ValueError):
    """A template that cannot be filled in here (no JupyterHub, or an unusable name)."""


def escape_segment(name: str) -> str:
    """``name`` as one key segment: letters, digits and ``-_@`` kept, the rest ``%XX``."""
    return "".join(c if c in _KEEP else "".join(f"%{b:02X}" for b in c.encode()) for c in name)


def expand(template: str, env: Mapping[str, str], *, setting: str, bucket: bool = False) -> str:
    """``template`` with its ``{username}`` / ``{servername}`` filled in from ``env``.

    A template without fields is returned as is. A field whose variable is not set, an
    unknown field, or (``bucket``) a name that is not a valid part of a bucket name raises
    :class:`HubNameError` naming ``setting``. A server without a name fills ``{servername}``
    with an empty string."""
    if "{" not in template:
        return template
    values: dict[str, str] = {}
    for field, variable in FIELDS.items():
        if "{" + field + "}" not in template:
            continue
        raw = env.get(variable)
        if raw is None or (field == "username" and not raw):
            raise HubNameError(
                f"{setting} {template!r} uses {{{field}}}, but {variable} is not set: "
                "it is set by JupyterHub for the servers it starts"
            )
        if bucket:
            if raw and not _BUCKET_SAFE.match(raw):
                raise HubNameError(
                    f"{setting} {template!r}: the {field} {raw!r} cannot be part of a bucket "
                    f"name; put {{{field}}} in the prefix instead"
                )
            values[field] = raw
        else:
            values[field] = escape_segment(raw)
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError) as err:
        raise HubNameError(
            f"{setting} {template!r}: only {{username}} and {{servername}} can be filled in "
            f"({type(err).__name__}: {err})"
        ) from err


def expand_settings(manager: Any, env: Mapping[str, str]) -> None:
    """Fill in ``manager.bucket`` and ``manager.prefix`` (at start, before the adapter is
    built), logging what a template resolved to; a :class:`~traitlets.TraitError` when it
    cannot be filled in."""
    from traitlets import TraitError

    for name in ("bucket", "prefix"):
        template = getattr(manager, name)
        try:
            value = expand(template, env, setting=name, bucket=name == "bucket")
        except HubNameError as err:
            raise TraitError(str(err)) from err
        if value != template:
            setattr(manager, name, value)
            manager.log.info("%s %r is %r for this server", name, template, value)
