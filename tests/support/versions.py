"""Emptying a versioned bucket (tests of history): every version and delete marker."""

from __future__ import annotations

from typing import Any

__all__ = ["delete_every_version"]


def delete_every_version(s3: Any, bucket: str) -> None:
    """Delete every version and delete marker of ``bucket`` through the boto3 client ``s3``
    (the bucket itself stays)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        gone = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if gone:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": gone, "Quiet": True})
