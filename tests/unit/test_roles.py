"""The session policy of ``role_arn`` and the role settings (no server)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from s3contents import S3ContentsManager
from s3contents.s3.roles import (
    MAX_POLICY_CHARS,
    default_session_name,
    session_policy,
)
from s3contents.s3.storage import S3Storage

ROLE = "arn:aws:iam::123456789012:role/notebooks"


def _statements(text: str) -> list[dict[str, Any]]:
    policy = json.loads(text)
    assert policy["Version"] == "2012-10-17"
    statements: list[dict[str, Any]] = policy["Statement"]
    return statements


@pytest.mark.parametrize(
    ("prefix", "objects", "listed"),
    [
        ("", "arn:aws:s3:::bkt/*", None),
        ("a", "arn:aws:s3:::bkt/a/*", "a/*"),
        ("/users/x y/", "arn:aws:s3:::bkt/users/x y/*", "users/x y/*"),
        ("users/first%2Elast", "arn:aws:s3:::bkt/users/first%2Elast/*", "users/first%2Elast/*"),
    ],
)
def test_policy_resources(prefix: str, objects: str, listed: str | None) -> None:
    text = session_policy("bkt", prefix)
    assert " " not in text.replace("x y", "")  # compact: STS counts the characters
    objs, listing, bucket, kms = _statements(text)
    assert objs == {
        "Effect": "Allow",
        "Action": [
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        ],
        "Resource": objects,
    }
    assert listing["Action"] == [
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:ListBucketMultipartUploads",
    ]
    assert listing["Resource"] == "arn:aws:s3:::bkt"
    if listed is None:  # no prefix: the whole bucket
        assert "Condition" not in listing
    else:
        assert listing["Condition"] == {"StringLike": {"s3:prefix": listed}}
    assert bucket["Resource"] == "arn:aws:s3:::bkt"
    assert set(bucket["Action"]) == {
        "s3:GetBucketVersioning",
        "s3:GetBucketLocation",
        "s3:GetLifecycleConfiguration",
    }
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    assert all(s["Effect"] == "Allow" for s in (objs, listing, bucket, kms))


def test_policy_wildcards_are_literal() -> None:
    objs, listing, *_ = _statements(session_policy("bkt", "a*b?/$c"))
    assert objs["Resource"] == "arn:aws:s3:::bkt/a${*}b${?}/${$}c/*"
    assert listing["Condition"]["StringLike"]["s3:prefix"] == "a${*}b${?}/${$}c/*"


def test_policy_other_delimiter_partition_and_access_point() -> None:
    objs, listing, *_ = _statements(
        session_policy("bkt", "|team|alice|", delimiter="|", region="cn-north-1")
    )
    assert objs["Resource"] == "arn:aws-cn:s3:::bkt/team|alice|*"
    assert listing["Condition"]["StringLike"]["s3:prefix"] == "team|alice|*"
    ap = "arn:aws:s3:eu-west-1:123456789012:accesspoint/notebooks"
    objs, listing, *_ = _statements(session_policy(ap, "u"))
    assert objs["Resource"] == f"{ap}/object/u/*"
    assert listing["Resource"] == ap


def test_policy_extra_actions_only_when_asked() -> None:
    objs, *_ = _statements(session_policy("bkt", "u", acl=True, tagging=True))
    assert {"s3:PutObjectAcl", "s3:GetObjectTagging", "s3:PutObjectTagging"} <= set(objs["Action"])


def test_policy_length_limit() -> None:
    longest_bucket = "b" * 63
    fits = session_policy(longest_bucket, "users/" + "u" * 400)
    assert len(fits) <= MAX_POLICY_CHARS
    with pytest.raises(ValueError, match="2048"):
        session_policy(longest_bucket, "users/" + "u" * 900)


def test_session_names() -> None:
    assert default_session_name("alice") == "s3contents-alice"
    assert default_session_name("first last/ü") == "s3contents-first-last--"
    assert len(default_session_name("x" * 100)) == 64


def test_manager_builds_the_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    cm = S3ContentsManager(
        bucket="bkt",
        prefix="users/{username}",
        access_key_id="AKIAEXAMPLEKEYID0001",
        secret_access_key="source-secret-value-1",
        role_arn=ROLE,
        role_external_id="external-id-value",
    )
    storage = cm.storage
    assert isinstance(storage, S3Storage) and storage.role is not None
    role = storage.role
    assert role.session_name == "s3contents-alice"
    assert role.probe_prefix == "users/alice/"
    assert role.policy == session_policy("bkt", "users/alice")
    # The configured keys are the source of AssumeRole, not the S3 client's.
    assert "aws_access_key_id" not in storage._client_kwargs
    assert role.source_keys == ("AKIAEXAMPLEKEYID0001", "source-secret-value-1", None)
    shown = repr(role)
    assert "source-secret-value-1" not in shown and "external-id-value" not in shown


def test_without_role_nothing_changes() -> None:
    cm = S3ContentsManager(
        bucket="bkt", access_key_id="AKIAEXAMPLE0001", secret_access_key="s" * 20
    )
    storage = cm.storage
    assert isinstance(storage, S3Storage)
    assert storage.role is None
    assert storage._client_kwargs["aws_access_key_id"] == "AKIAEXAMPLE0001"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"role_duration_seconds": 600}, "between 900"),
        ({"anon": True}, "anon"),
        ({"prefix": "u" * 1000}, "2048"),
    ],
)
def test_bad_role_settings_fail_at_start(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(TraitError, match=message):
        S3ContentsManager(bucket="bkt", role_arn=ROLE, **settings)


def test_bad_session_name_is_refused() -> None:
    with pytest.raises(TraitError, match="role_session_name"):
        S3ContentsManager(bucket="bkt", role_arn=ROLE, role_session_name="a b")


DOC = Path(__file__).resolve().parents[2] / "docs" / "jupyterhub.md"


def test_the_documented_policy_is_the_one_sent() -> None:
    text = DOC.read_text(encoding="utf-8")
    after = text.split("The session policy s3contents sends", 1)[1]
    block = after.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == json.loads(
        session_policy("acme-notebooks", "users/alice", region="eu-west-1")
    )


def test_the_documented_settings_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    s3_env = {
        name
        for trait in S3ContentsManager.class_traits().values()
        for name in (trait.metadata.get("env") or ())
    }
    for var in set(re.findall(r"\bJPY_S3_[A-Z_]+", text)) - {"JPY_S3_"}:
        assert var in s3_env, var
    from s3contents.gcs import GCSContentsManager

    gcs_env = {
        name
        for trait in GCSContentsManager.class_traits().values()
        for name in (trait.metadata.get("env") or ())
    }
    for var in set(re.findall(r"\bJPY_GCS_[A-Z_]+", text)):
        assert var in gcs_env, var
    traits = S3ContentsManager.class_traits()
    for name in re.findall(r"c\.S3ContentsManager\.(\w+)", text):
        assert name in traits, name
    for name in ("role_arn", "role_duration_seconds", "role_session_name", "role_external_id"):
        assert f"`{name}`" in text and name in traits
