"""``role_arn``: credentials scoped to the prefix, from moto's STS (the moto server of the
tests, with IAM authentication on).

moto checks the role's trust policy, the caller's right to ``sts:AssumeRole``, and that each
S3 request is signed by known credentials allowed by their own policies; it does not apply
the session policy (AWS does: see docs/jupyterhub.md). The source user here may assume the
role and nothing else, so every S3 request that succeeds was signed with the role's
credentials.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from aiobotocore.session import AioSession
from botocore.exceptions import EndpointConnectionError
from dateutil.tz import tzlocal

from s3contents import S3ContentsManager
from s3contents.doctor import OK, run_checks
from s3contents.errors import Forbidden
from s3contents.s3.roles import session_policy
from s3contents.s3.storage import S3Storage
from tests.support.servers import S3Server

ALLOW_ALL_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


@dataclasses.dataclass
class Identities:
    role_arn: str
    user_key: str
    user_secret: str


@pytest.fixture
def identities(moto_s3: S3Server) -> Iterator[Identities]:
    """A role allowed S3, and a user allowed only to assume it (moto's IAM)."""
    iam = boto3.session.Session().client(
        "iam",
        endpoint_url=moto_s3.endpoint_url,
        aws_access_key_id=moto_s3.access_key_id,
        aws_secret_access_key=moto_s3.secret_access_key,
        region_name=moto_s3.region_name,
    )
    tag = secrets.token_hex(4)
    try:
        user = iam.create_user(UserName=f"hub-{tag}")["User"]
        role = iam.create_role(
            RoleName=f"notebooks-{tag}",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": user["Arn"]},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]
        iam.put_role_policy(
            RoleName=role["RoleName"],
            PolicyName="s3",
            PolicyDocument=json.dumps(ALLOW_ALL_S3),
        )
        iam.put_user_policy(
            UserName=user["UserName"],
            PolicyName="assume",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role["Arn"]}
                    ],
                }
            ),
        )
        key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
        yield Identities(role["Arn"], key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        iam.close()


@pytest.fixture
def moto_bucket(moto_s3: S3Server) -> Iterator[str]:
    name = moto_s3.make_bucket()
    yield name
    moto_s3.remove_bucket(name)


class STSRecorder:
    """The AssumeRole requests a session's STS clients send, and the keys they got."""

    def __init__(self) -> None:
        self.session = AioSession()
        self.requests: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.delay = 0.0
        #: How far the test's clock is ahead of real time: moto's expiry is real time, so
        #: the answers are moved by as much (credentials last their duration from "now").
        self.ahead = timedelta()
        self.session.register("provide-client-params.sts.AssumeRole", self._params)
        self.session.register("before-sign.sts.AssumeRole", self._before_sign)
        self.session.register("after-call.sts.AssumeRole", self._answer)

    def _params(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(dict(params))

    async def _before_sign(self, **_: Any) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)

    def _answer(self, parsed: dict[str, Any], **_: Any) -> None:
        if "Credentials" in parsed:
            self.keys.append(parsed["Credentials"]["AccessKeyId"])
            parsed["Credentials"]["Expiration"] += self.ahead


@pytest.fixture
def scoped(
    moto_s3: S3Server,
    moto_bucket: str,
    identities: Identities,
    jp_asyncio_loop: asyncio.AbstractEventLoop,
) -> Iterator[tuple[S3ContentsManager, STSRecorder]]:
    recorder = STSRecorder()
    cm = S3ContentsManager(
        **_alice(moto_s3, moto_bucket, identities),
        boto3_session=recorder.session,
        role_arn=identities.role_arn,
        role_session_name="s3contents-alice",
        role_duration_seconds=900,
    )
    try:
        yield cm, recorder
    finally:
        jp_asyncio_loop.run_until_complete(cm.close())


def _alice(server: S3Server, bucket: str, identities: Identities) -> dict[str, Any]:
    """Settings of a manager on ``users/alice`` that signs in as the user who may only
    assume roles (add ``role_arn``), with moto as its STS."""
    return {
        "bucket": bucket,
        "prefix": "users/alice",
        "endpoint_url": server.endpoint_url,
        "region_name": server.region_name,
        "access_key_id": identities.user_key,
        "secret_access_key": identities.user_secret,
        "sts_endpoint_url": server.endpoint_url,
    }


def _objects(server: S3Server, bucket: str) -> list[str]:
    listed = server.admin.list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", ()))


async def test_the_source_user_alone_cannot_use_s3(
    moto_s3: S3Server, moto_bucket: str, identities: Identities
) -> None:
    # What makes the tests below prove something: without the role, the user is refused.
    storage = S3Storage(
        moto_bucket,
        client_kwargs={
            "endpoint_url": moto_s3.endpoint_url,
            "region_name": moto_s3.region_name,
            "aws_access_key_id": identities.user_key,
            "aws_secret_access_key": identities.user_secret,
        },
    )
    try:
        with pytest.raises(Forbidden):
            await storage.put("users/alice/x", b"x")
    finally:
        await storage.close()


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "botocore"])
async def test_manager_works_with_the_roles_credentials(
    scoped: tuple[S3ContentsManager, STSRecorder], moto_s3: S3Server, lean: bool
) -> None:
    cm, recorder = scoped
    cm.lean_requests = lean
    cm.storage = cm._build_storage()
    await cm.save({"type": "directory"}, "sub")
    await cm.save({"type": "file", "format": "text", "content": "hello"}, "sub/a.txt")
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    await cm.save({"type": "notebook", "content": nb}, "n.ipynb")
    model = await cm.get("sub/a.txt")
    assert model["content"] == "hello"
    await cm.rename("sub", "moved")
    root = await cm.get("")
    assert sorted(e["name"] for e in root["content"]) == ["moved", "n.ipynb"]
    assert await cm.file_exists("moved/a.txt")
    assert all(k.startswith("users/alice/") for k in _objects(moto_s3, cm.bucket))

    # One AssumeRole, with the session policy of the bucket and prefix.
    assert len(recorder.requests) == 1
    sent = recorder.requests[0]
    assert sent["RoleArn"] == cm.role_arn
    assert sent["RoleSessionName"] == "s3contents-alice"
    assert sent["DurationSeconds"] == 900
    assert sent["Policy"] == session_policy(cm.bucket, "users/alice", region=moto_s3.region_name)
    policy = json.loads(sent["Policy"])
    objects, listing = policy["Statement"][:2]
    assert objects["Resource"] == f"arn:aws:s3:::{cm.bucket}/users/alice/*"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "users/alice/*"}}
    # The hooks' fs goes through the manager's adapter; jupytext's un-awaited exists
    # through the sync probe's own adapter, with its own AssumeRole (the user alone would
    # be refused).
    assert (await asyncio.to_thread(cm.fs.read, "moved/a.txt"))[0] == "hello"
    assert len(recorder.requests) == 1
    assert bool(cm.exists("n.ipynb"))
    assert len(recorder.requests) == 2
    assert recorder.requests[1] == sent
    storage = cm.storage
    assert isinstance(storage, S3Storage)
    assert (storage.wire is not None) is lean
    if storage.wire is not None:
        frozen = await storage.wire._credentials()
        assert frozen is not None
        assert frozen.access_key == recorder.keys[0] != cm.access_key_id


async def test_credentials_are_refreshed_before_expiry(
    scoped: tuple[S3ContentsManager, STSRecorder],
) -> None:
    cm, recorder = scoped
    storage = cm.storage
    assert isinstance(storage, S3Storage) and storage.role is not None

    def clock() -> datetime:
        return datetime.now(tzlocal()) + recorder.ahead

    storage.role = dataclasses.replace(storage.role, clock=clock)
    assert storage.role.advisory_margin == 225 and storage.role.mandatory_margin == 90
    await cm.save({"type": "file", "format": "text", "content": "0"}, "f0.txt")
    assert len(recorder.requests) == 1

    async def current_key() -> str:
        assert storage.wire is not None
        frozen = await storage.wire._credentials()
        assert frozen is not None
        return frozen.access_key

    # Inside the advisory window (200 s left): one request refreshes, awaiting STS (slowed
    # to 2 s here) while the event loop runs and other requests go on with the current
    # credentials.
    recorder.ahead = timedelta(seconds=700)
    recorder.delay = 2.0
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    tick_task = asyncio.create_task(ticker())
    refreshing = asyncio.create_task(cm.get("f0.txt"))
    await asyncio.sleep(0.2)
    assert not refreshing.done()
    others = [await cm.get("f0.txt") for _ in range(3)]  # not held by the refresh
    assert not refreshing.done() and all(m["content"] == "0" for m in others)
    assert (await refreshing)["content"] == "0"
    stop.set()
    await tick_task
    assert ticks >= 50  # the loop ran all along the refresh's two seconds
    assert len(recorder.requests) == 2
    assert await current_key() == recorder.keys[-1]
    recorder.delay = 0.0

    # Past the mandatory margin of the new credentials (50 s left): the requests wait for
    # the refresh (one STS call for all); none fails.
    recorder.ahead = timedelta(seconds=700 + 850)
    key = cm.keys.key("f0.txt")
    heads = await asyncio.gather(*(storage.head(key) for _ in range(4)))
    assert all(h.size == 1 for h in heads)
    assert len(recorder.requests) == 3
    assert await current_key() == recorder.keys[-1]
    assert len(set(recorder.keys)) == 3
    # With nothing due, no further AssumeRole.
    await cm.save({"type": "file", "format": "text", "content": "1"}, "f1.txt")
    for _ in range(5):
        await cm.get("f1.txt")
    assert len(recorder.requests) == 3


async def test_doctor_names_the_role_and_no_key(
    scoped: tuple[S3ContentsManager, STSRecorder], identities: Identities
) -> None:
    cm, _ = scoped
    described = await cm.storage.describe_credentials()
    assert identities.role_arn in described and "s3contents-alice" in described
    assert identities.user_secret not in described
    assert identities.user_key not in described
    assert "from the configuration" in described
    checks = {c.name: c for c in await run_checks(cm, "the configuration")}
    assert checks["credentials"].status == OK
    detail = checks["credentials"].detail
    assert detail.startswith(f"role {identities.role_arn} (session s3contents-alice")
    assert "assumed with access key" in detail and identities.user_key not in detail
    assert checks["bucket"].status == OK and checks["write"].status == OK
    storage = cm.storage
    assert isinstance(storage, S3Storage)
    assert identities.user_secret not in repr(storage.role)
    # The bucket check under a scoped policy: a listing under the prefix (HeadBucket
    # needs s3:ListBucket with no prefix, which the session policy does not allow).
    before = dict(storage.stats)
    await storage.check_bucket()
    assert storage.stats["HEAD"] == before.get("HEAD", 0)
    assert storage.stats["LIST"] == before.get("LIST", 0) + 1


async def test_a_role_that_cannot_be_assumed_is_forbidden(
    moto_s3: S3Server, moto_bucket: str, identities: Identities
) -> None:
    cm = S3ContentsManager(
        **_alice(moto_s3, moto_bucket, identities),
        role_arn=identities.role_arn.replace("notebooks-", "other-"),
    )
    try:
        with pytest.raises(Forbidden) as err:
            await cm.storage.put("users/alice/x", b"x")
        assert "Could not assume" in str(err.value)
        assert identities.user_secret not in str(err.value)
    finally:
        await cm.close()


async def test_a_failed_advisory_refresh_fails_no_request(
    scoped: tuple[S3ContentsManager, STSRecorder],
    identities: Identities,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cm, recorder = scoped
    storage = cm.storage
    assert isinstance(storage, S3Storage) and storage.role is not None
    storage.role = dataclasses.replace(
        storage.role, clock=lambda: datetime.now(tzlocal()) + recorder.ahead
    )
    await cm.save({"type": "file", "format": "text", "content": "x"}, "f.txt")
    assert storage.wire is not None
    frozen = await storage.wire._credentials()
    assert frozen is not None

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    recorder.session.register("before-sign.sts.AssumeRole", unreachable)
    recorder.ahead = timedelta(seconds=700)  # advisory window: the refresh may fail
    caplog.set_level(logging.DEBUG)
    assert (await cm.get("f.txt"))["content"] == "x"  # with the current credentials
    assert len(recorder.requests) == 2  # the refresh was tried
    assert "Refreshing temporary credentials failed during advisory" in caplog.text
    for secret in (identities.user_secret, frozen.secret_key, frozen.token):
        assert secret and secret not in caplog.text
    recorder.session.unregister("before-sign.sts.AssumeRole", unreachable)
    assert (await cm.get("f.txt"))["content"] == "x"  # and the next request refreshes
    assert len(recorder.requests) == 3
