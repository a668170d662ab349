"""GCS timestamps (RFC 3339 with 0 to 9 digits of fraction) parse on every Python we support."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from s3contents.gcs.storage import _parse_rfc3339


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25T20:27:00Z",
        "2026-11-25T20:27:00.6Z",
        "2026-11-25T20:27:00.61024Z",
        "2026-11-25T20:27:00.610240123Z",
        "2026-11-25T20:27:00.61024+00:00",
    ],
)
def test_rfc3339_in_whole_utc_seconds(text: str) -> None:
    assert _parse_rfc3339(text) == datetime(2026, 11, 25, 20, 27, 0, tzinfo=timezone.utc)
