"""``s3contents doctor``: check a set-up step by step and say how to fix what fails.

Checks, in order: the configuration parses; credentials resolve (their source, never the
secret); the endpoint answers; the bucket exists; listing, writing, reading, copying and
deleting under the prefix are allowed; whether the store honours create-only writes;
whether uploads were left incomplete under the prefix (how many, their bytes); and whether a
lifecycle rule of the bucket aborts incomplete multipart uploads (the rule to add, if not);
and whether the bucket keeps versions (history: every save listed as a checkpoint), with a
lifecycle rule expiring noncurrent versions when it does (the rule to add, if not).
Each check prints one line, and a fix hint when it fails. The credentials line says where
they were found, and is ``ok`` only once the storage accepted them (the bucket check), or
``FAIL`` when it rejected them: one line, one verdict. Only a probe object under the
prefix (``.s3contents-doctor-<random>``) is written, and it is deleted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

from .errors import (
    AlreadyExists,
    BadCredentials,
    ContentsError,
    Forbidden,
    NotFound,
    Unavailable,
)
from .redact import mask_key
from .storage.base import VERSIONING_OFF, Listing, PendingUpload, PutMode, Storage

__all__ = ["Check", "run_checks"]

#: skip: not tried, or (credentials) found but given no verdict by any request.
OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"

#: The permission each step needs, by provider, for fix hints.
_PERMISSIONS = {
    "s3": {
        "bucket": "s3:ListBucket on arn:aws:s3:::{bucket}",
        "list": "s3:ListBucket on arn:aws:s3:::{bucket} (condition s3:prefix = '{prefix}*')",
        "write": "s3:PutObject on arn:aws:s3:::{bucket}/{prefix}*",
        "read": "s3:GetObject on arn:aws:s3:::{bucket}/{prefix}*",
        "copy": "s3:GetObject and s3:PutObject on arn:aws:s3:::{bucket}/{prefix}*",
        "delete": "s3:DeleteObject on arn:aws:s3:::{bucket}/{prefix}*",
        "uploads": "s3:ListBucketMultipartUploads on arn:aws:s3:::{bucket}",
        "lifecycle": "s3:GetLifecycleConfiguration on arn:aws:s3:::{bucket}",
        "versioning": "s3:GetBucketVersioning on arn:aws:s3:::{bucket}",
    },
    "gs": {
        "bucket": "storage.buckets.get on gs://{bucket}",
        "list": "storage.objects.list on gs://{bucket}",
        "write": "storage.objects.create on gs://{bucket}",
        "read": "storage.objects.get on gs://{bucket}",
        "copy": "storage.objects.get and storage.objects.create on gs://{bucket}",
        "delete": "storage.objects.delete on gs://{bucket}",
        "uploads": "",
        "lifecycle": "",
        "versioning": "storage.buckets.get on gs://{bucket}",
    },
}


@dataclass
class Check:
    """The outcome of one check."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def render(self) -> str:
        line = f"[{self.status:^4}] {self.name:<18} {self.detail}"
        return line + (f"\n       fix: {self.fix}" if self.fix else "")


def _no_credentials_fix(storage: Storage) -> str:
    if (urlparse(storage.url).scheme or "s3") == "s3":
        return (
            "set access_key_id and secret_access_key (JPY_S3_ACCESS_KEY_ID and "
            "JPY_S3_SECRET_ACCESS_KEY), or AWS's default credentials (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, a profile, an instance or workload "
            "role); for the embedded server, start 's3contents lab'"
        )
    return (
        "set access_key_id and secret_access_key, or configure the provider's default "
        "credentials (environment, profile, instance or workload role)"
    )


def _permission(storage: Storage, step: str, bucket: str, prefix: str) -> str:
    scheme = urlparse(storage.url).scheme or "s3"
    table = _PERMISSIONS.get(scheme, _PERMISSIONS["s3"])
    return "allow " + table[step].format(bucket=bucket, prefix=prefix)


async def _endpoint_answers(url: str, timeout: float = 5.0) -> float:
    """Seconds a TCP connection to the endpoint takes; raises OSError/TimeoutError."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    started = time.monotonic()
    _, writer = await asyncio.wait_for(asyncio.open_connection(parsed.hostname, port), timeout)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return time.monotonic() - started


async def run_checks(cm: Any, credentials_from: str | None = None) -> list[Check]:
    """Run every check against the manager's storage; never raises for a failed check.

    ``credentials_from`` names where the manager's own keys came from ("environment
    variables JPY_S3_ACCESS_KEY_ID and JPY_S3_SECRET_ACCESS_KEY", a config file...); without
    it the storage says (the provider's credential chain names its source)."""
    storage: Storage = cm.storage
    bucket = getattr(cm, "bucket", "")
    root = cm.keys.root
    checks: list[Check] = []

    def hint(step: str) -> str:
        return _permission(storage, step, bucket, root)

    # Credentials: found now, judged by the first request that needs them (the bucket's).
    try:
        described = await storage.describe_credentials()
    except ContentsError as err:
        checks.append(Check("credentials", FAIL, str(err), _no_credentials_fix(storage)))
        return checks
    who, _, found_in = described.partition(" from ")
    if credentials_from:
        key = getattr(cm, "access_key_id", None)
        who, found_in = (f"access key {mask_key(key)}" if key else who), credentials_from
        role = getattr(storage, "role", None)  # S3's role_arn: the keys only assume it
        if role is not None and not who.startswith("role "):
            who = f"{role.describe()}, assumed with {who}"
    credentials = Check("credentials", SKIP, "")
    checks.append(credentials)

    def judge(status: str, outcome: str, fix: str = "") -> None:
        credentials.status, credentials.fix = status, fix
        if status == OK:
            credentials.detail = f"{who} from {found_in}: accepted" if found_in else f"{who}"
        elif found_in:
            credentials.detail = f"{who} found in {found_in}{outcome}"
        else:
            credentials.detail = f"{who}{outcome}"

    judge(SKIP, "; not tried: the endpoint does not answer")
    credentials_fix = (
        f"the key id or secret{' found in ' + found_in if found_in else ''} is wrong, or the "
        "token expired: check them (and the region/endpoint they belong to)"
    )

    def rejected(err: ContentsError) -> None:
        judge(FAIL, f": {err}", credentials_fix)

    # Endpoint.
    try:
        seconds = await _endpoint_answers(storage.endpoint)
        checks.append(
            Check("endpoint", OK, f"{storage.endpoint} answers ({seconds * 1000:.0f} ms)")
        )
    except (OSError, asyncio.TimeoutError) as err:
        checks.append(
            Check(
                "endpoint",
                FAIL,
                f"cannot connect to {storage.endpoint} ({type(err).__name__}: {err})",
                "check endpoint_url (scheme, host and port), the network and any proxy",
            )
        )
        return checks

    # Bucket.
    judge(SKIP, "; not confirmed: the bucket check did not get an answer about them")
    try:
        await storage.check_bucket()
        judge(OK, "")
        checks.append(Check("bucket", OK, f"{storage.url} exists"))
    except BadCredentials as err:
        rejected(err)
        return checks
    except Forbidden:
        judge(OK, "")  # refused with valid credentials: they were accepted
        checks.append(
            Check(
                "bucket",
                WARN,
                f"not allowed to look at {storage.url} itself; fine if access is limited to "
                "the prefix",
                hint("bucket") + " to let doctor and the start-up check see it",
            )
        )
    except ContentsError as err:
        checks.append(
            Check("bucket", FAIL, str(err), f"create {storage.url} or fix the bucket name")
        )
        return checks

    probe = f"{root}.s3contents-doctor-{secrets.token_hex(6)}"
    copy = probe + "-copy"
    data = b"s3contents doctor probe\n"

    async def step(name: str, action: Callable[[], Awaitable[Any]], done: str) -> str:
        """Run one check; returns OK, FAIL, "credentials" when those were rejected, or
        "denied" when valid credentials were refused the action."""
        try:
            await action()
        except BadCredentials as err:
            rejected(err)
            return "credentials"
        except Forbidden as err:
            checks.append(Check(name, FAIL, str(err), hint(name)))
            return "denied"
        except ContentsError as err:
            checks.append(Check(name, FAIL, f"{type(err).__name__}: {err}"))
            return FAIL
        checks.append(Check(name, OK, done))
        return OK

    where = f"under {root!r}" if root else "in the bucket"
    listed: list[Listing] = []

    async def list_root() -> None:
        listed.append(await storage.list(root))

    if await step("list", list_root, f"allowed {where}") == "credentials":
        return checks
    wrote = await step("write", lambda: storage.put(probe, data), f"allowed {where}")
    if wrote == "denied":
        await _read_only(step, checks, storage, listed, where)
    if wrote != OK:
        checks += await _uploads(cm, storage, bucket, root)
        checks.append(await _history(storage, bucket, root))
        return checks
    try:

        async def read() -> None:
            got, _ = await storage.get(probe)
            if got != data:
                raise Unavailable("the probe read back different bytes")

        await step("read", read, "allowed, bytes intact")
        await step("copy", lambda: storage.copy(probe, copy), "allowed (server-side)")
        checks.append(await _conditional(storage, probe, copy, data))
    finally:

        async def delete() -> None:
            await storage.delete_many([probe, copy])
            try:
                await storage.head(probe)
            except NotFound:
                return
            raise Forbidden("the probe is still there after a delete")

        await step("delete", delete, f"allowed {where}")
    checks += await _uploads(cm, storage, bucket, root)
    checks.append(await _history(storage, bucket, root))
    return checks


async def _read_only(
    step: Callable[[str, Callable[[], Awaitable[Any]], str], Awaitable[str]],
    checks: list[Check],
    storage: Storage,
    listed: list[Listing],
    where: str,
) -> None:
    """Writing was denied: do reads work (read-only credentials)? Read a file that is there."""
    keys = [o.key for o in (listed[0].objects if listed else ()) if not o.key.endswith("/")]
    if not keys:
        checks.append(Check("read", SKIP, f"nothing {where} to read (and no probe written)"))
        return
    if await step("read", lambda: storage.get(keys[0]), f"allowed ({keys[0]})") == OK:
        checks.append(
            Check(
                "access",
                WARN,
                "read-only: Jupyter can list and open files, but every save, new file, "
                "copy, rename, delete and checkpoint will be refused (403, write access "
                "denied)",
            )
        )


async def _conditional(storage: Storage, probe: str, copy: str, data: bytes) -> Check:
    """Does the store refuse create-only writes onto existing keys?"""
    refused = []
    for what, action in (
        ("PUT", lambda: storage.put(probe, data, mode=PutMode.CREATE)),
        ("copy", lambda: storage.copy(probe, copy, mode=PutMode.CREATE)),
    ):
        try:
            await action()
        except AlreadyExists:
            refused.append(what)
        except ContentsError:
            pass
    if len(refused) == 2:
        return Check("conditional writes", OK, "create-only PUT and copy are honoured")
    missing = " and ".join(w for w in ("PUT", "copy") if w not in refused)
    return Check(
        "conditional writes",
        WARN,
        f"create-only {missing} NOT honoured: two clients creating the same name at the same "
        "moment may overwrite each other (checks before writing still catch the usual case)",
        "use a server that supports If-None-Match on PutObject and CopyObject (AWS S3, "
        "recent MinIO, SeaweedFS) or GCS preconditions",
    )


#: Incomplete uploads whose parts doctor looks at, at most (one request each).
_INSPECTED_UPLOADS = 50
#: The ID of the lifecycle rule doctor suggests.
_RULE_ID = "s3contents-abort-incomplete-uploads"


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


async def _uploads(cm: Any, storage: Storage, bucket: str, root: str) -> list[Check]:
    """The uploads left incomplete under the prefix, and the lifecycle rule for them."""
    where = f"under {root!r}" if root else "in the bucket"
    if not hasattr(storage, "lifecycle_rules"):  # GCS
        return [
            Check(
                "uploads",
                OK,
                "GCS resumable uploads cannot be listed; an abandoned one holds no object "
                "and expires by itself after a week (no lifecycle rule needed)",
            )
        ]
    timeout = float(getattr(cm, "upload_timeout", 600.0))
    checks: list[Check] = []
    try:
        listed = await storage.multipart_list(root)
    except ContentsError as err:
        fix = _permission(storage, "uploads", bucket, root)
        checks.append(
            Check(
                "uploads",
                WARN,
                f"could not list incomplete uploads {where} ({err}): Jupyter cannot sweep "
                "those left by a server that was killed",
                fix if isinstance(err, Forbidden) else "",
            )
        )
    else:
        checks.append(await _orphans(storage, listed, where, timeout))
    checks.append(await _lifecycle(storage, bucket, root, where))
    return checks


async def _orphans(
    storage: Storage, listed: list[PendingUpload], where: str, timeout: float
) -> Check:
    now = datetime.now(timezone.utc)
    horizon = timedelta(seconds=timeout)
    old = [u for u in listed if now - u.initiated > horizon]
    orphans = parts = size = 0
    for upload in old[:_INSPECTED_UPLOADS]:
        try:
            stored = await storage.multipart_parts(upload.key, upload.upload_id)
        except ContentsError:
            continue
        if stored.newest is not None and now - stored.newest <= horizon:
            continue  # still receiving parts: someone's upload in progress
        orphans, parts, size = orphans + 1, parts + stored.count, size + stored.size
    uninspected = max(0, len(old) - _INSPECTED_UPLOADS)
    alive = len(listed) - len(old)
    if not orphans and not uninspected:
        more = f" ({len(listed) - orphans} in progress)" if listed else ""
        return Check("uploads", OK, f"none left incomplete {where}{more}")
    detail = (
        f"{orphans} upload(s) left incomplete {where} (nothing for over {timeout:g} s), "
        f"holding {_size(size)} in {parts} part(s)"
    )
    if uninspected:
        detail += f", and {uninspected} more begun over {timeout:g} s ago, not inspected"
    if alive:
        detail += f"; {alive} more in progress"
    return Check(
        "uploads",
        WARN,
        detail,
        "a Jupyter server on this prefix aborts them when it starts and every upload_timeout; "
        "a lifecycle rule aborts them whatever runs",
    )


async def _lifecycle(storage: Storage, bucket: str, root: str, where: str) -> Check:
    rules: list[dict[str, Any]] = []
    try:
        rules = await storage.lifecycle_rules()  # type: ignore[attr-defined]
    except ContentsError as err:
        return Check(
            "lifecycle",
            WARN,
            f"could not read the lifecycle rules of {storage.url} ({err})",
            _permission(storage, "lifecycle", bucket, root) + "; " + _rule_fix(bucket, root, []),
        )
    for rule in rules:
        days = (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
        if rule.get("Status") == "Enabled" and days and _covers(rule, root):
            return Check(
                "lifecycle",
                OK,
                f"rule {rule.get('ID', '(no ID)')!r} aborts incomplete multipart uploads {where} "
                f"{days} day(s) after they begin",
            )
    return Check(
        "lifecycle",
        WARN,
        f"no lifecycle rule aborts incomplete multipart uploads {where}: one left by a server "
        "that was killed, on a prefix no server starts on again, stays (and is billed) for good",
        _rule_fix(bucket, root, rules),
    )


def _covers(rule: dict[str, Any], root: str) -> bool:
    """Does a lifecycle rule apply to every key under ``root``? (A rule filtered by tags or
    object size cannot abort uploads: S3 refuses such rules.)"""
    if "Filter" not in rule:
        return root.startswith(str(rule.get("Prefix", "")))
    selector = rule["Filter"] or {}
    if "And" in selector:
        selector = selector["And"] or {}
        if selector.get("Tags") or any(k.startswith("Object") for k in selector):
            return False
    elif any(k in selector for k in ("Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan")):
        return False
    return root.startswith(str(selector.get("Prefix", "")))


def _rule_fix(bucket: str, root: str, rules: list[dict[str, Any]]) -> str:
    rule = {
        "ID": _RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": root},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    config = json.dumps({"Rules": [*rules, rule]}, default=_json_default)
    kept = " (the bucket's other rules are kept: the request replaces them all)" if rules else ""
    return (
        f"add the rule{kept}: aws s3api put-bucket-lifecycle-configuration --bucket {bucket} "
        f"--lifecycle-configuration '{config}'"
    )


def _json_default(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


#: The ID of the rule doctor suggests for a versioned bucket, and what it keeps.
_HISTORY_RULE_ID = "s3contents-expire-noncurrent-versions"
_NONCURRENT_DAYS = 30
_NEWER_KEPT = 20


async def _history(storage: Storage, bucket: str, root: str) -> Check:
    """Does the bucket keep versions, and does a lifecycle rule expire the old ones?"""
    where = f"under {root!r}" if root else "in the bucket"
    try:
        state = await storage.versioning()
    except ContentsError as err:
        return Check(
            "history",
            WARN,
            f"could not read the versioning of {storage.url} ({err}): Jupyter lists no "
            "versions as checkpoints",
            _permission(storage, "versioning", bucket, root) if isinstance(err, Forbidden) else "",
        )
    if state == VERSIONING_OFF:
        return Check(
            "history",
            OK,
            "versioning off: one checkpoint per file (turn versioning on to list every "
            "save as a checkpoint)",
        )
    noun = "on" if state == "enabled" else state
    gcs = (urlparse(storage.url).scheme or "s3") == "gs"
    try:
        if gcs:
            rules = await storage.bucket_lifecycle()  # type: ignore[attr-defined]
        else:
            rules = await storage.lifecycle_rules()  # type: ignore[attr-defined]
    except (ContentsError, AttributeError) as err:
        return Check(
            "history",
            WARN,
            f"versioning {noun}; could not read the lifecycle rules of {storage.url} ({err})",
            _permission(storage, "lifecycle", bucket, root) if isinstance(err, Forbidden) else "",
        )
    expiring = [r for r in rules if (_gcs_expires if gcs else _s3_expires)(r, root)]
    if expiring:
        names = ", ".join(repr(_rule_name(r)) for r in expiring)
        return Check(
            "history",
            OK,
            f"versioning {noun}: every save is a checkpoint; rule {names} expires noncurrent "
            f"versions {where}",
        )
    return Check(
        "history",
        WARN,
        f"versioning {noun}, and no lifecycle rule expires noncurrent versions {where}: every "
        "save is kept (and billed) for good",
        _history_fix_gcs(bucket, root) if gcs else _history_fix(bucket, root, rules),
    )


def _rule_name(rule: dict[str, Any]) -> str:
    return str(rule.get("ID") or rule.get("action", {}).get("type") or "(no ID)")


def _s3_expires(rule: dict[str, Any], root: str) -> bool:
    """An enabled S3 rule over ``root`` that expires noncurrent versions."""
    expiry = rule.get("NoncurrentVersionExpiration") or {}
    return (
        rule.get("Status") == "Enabled"
        and bool(expiry.get("NoncurrentDays") or expiry.get("NewerNoncurrentVersions"))
        and _covers(rule, root)
    )


def _gcs_expires(rule: dict[str, Any], root: str) -> bool:
    """A GCS Delete rule over ``root`` whose condition only matches noncurrent versions."""
    condition = rule.get("condition") or {}
    if (rule.get("action") or {}).get("type") != "Delete":
        return False
    noncurrent = (
        condition.get("isLive") is False
        or "numNewerVersions" in condition
        or "daysSinceNoncurrentTime" in condition
        or "noncurrentTimeBefore" in condition
    )
    prefixes = condition.get("matchesPrefix")
    return noncurrent and (not prefixes or any(root.startswith(p) for p in prefixes))


def _history_fix(bucket: str, root: str, rules: list[dict[str, Any]]) -> str:
    added = [
        {
            "ID": _HISTORY_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": root},
            "NoncurrentVersionExpiration": {
                "NoncurrentDays": _NONCURRENT_DAYS,
                "NewerNoncurrentVersions": _NEWER_KEPT,
            },
        }
    ]
    uploads = any(
        r.get("Status") == "Enabled"
        and (r.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
        and _covers(r, root)
        for r in rules
    )
    if not uploads:  # the uploads rule too: the request replaces every rule
        added.insert(
            0,
            {
                "ID": _RULE_ID,
                "Status": "Enabled",
                "Filter": {"Prefix": root},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            },
        )
    config = json.dumps({"Rules": [*rules, *added]}, default=_json_default)
    return (
        f"versions older than {_NONCURRENT_DAYS} days beyond the newest {_NEWER_KEPT} go "
        "(Jupyter lists max_versions, default 20); with the uploads rule, the bucket's other "
        f"rules kept: aws s3api put-bucket-lifecycle-configuration --bucket {bucket} "
        f"--lifecycle-configuration '{config}'"
    )


def _history_fix_gcs(bucket: str, root: str) -> str:
    rule = {
        "action": {"type": "Delete"},
        "condition": {
            "isLive": False,
            "daysSinceNoncurrentTime": _NONCURRENT_DAYS,
            "numNewerVersions": _NEWER_KEPT,
            **({"matchesPrefix": [root]} if root else {}),
        },
    }
    return (
        f"add a lifecycle rule deleting noncurrent versions after {_NONCURRENT_DAYS} days "
        f"beyond the newest {_NEWER_KEPT} (keeping the bucket's other rules): "
        f"{json.dumps({'rule': [rule]})} with gcloud storage buckets update gs://{bucket} "
        "--lifecycle-file=FILE"
    )
