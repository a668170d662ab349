"""``{username}`` / ``{servername}`` in ``prefix`` and ``bucket`` (JupyterHub)."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from s3contents import S3ContentsManager
from s3contents.hubnames import HubNameError, escape_segment, expand

HUB = {"JUPYTERHUB_USER": "alice", "JUPYTERHUB_SERVER_NAME": ""}


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("alice", "alice"),
        ("Bob_2@corp-x", "Bob_2@corp-x"),
        ("first.last", "first%2Elast"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a/../b", "a%2F%2E%2E%2Fb"),
        ("ünï 日", "%C3%BCn%C3%AF%20%E6%97%A5"),
        ("100%", "100%25"),
    ],
)
def test_names_become_one_safe_segment(name: str, segment: str) -> None:
    assert escape_segment(name) == segment
    assert "/" not in segment and segment not in (".", "..")


def test_different_names_never_share_a_segment() -> None:
    names = ["a.b", "a%2Eb", "a/b", "a%2Fb", "a b", "a+b", "A.B", "a..b", "ä", "a%C3%A4"]
    assert len({escape_segment(n) for n in names}) == len(names)


def test_prefix_and_bucket_are_filled_in() -> None:
    env = {"JUPYTERHUB_USER": "al/ice", "JUPYTERHUB_SERVER_NAME": "gpu"}
    assert expand("users/{username}/{servername}", env, setting="prefix") == "users/al%2Fice/gpu"
    assert expand("users/{username}", HUB, setting="prefix") == "users/alice"
    assert expand("plain/prefix", {}, setting="prefix") == "plain/prefix"
    assert expand("nb-{username}", HUB, setting="bucket", bucket=True) == "nb-alice"


@pytest.mark.parametrize(
    ("template", "env", "bucket"),
    [
        ("users/{username}", {}, False),  # not under JupyterHub
        ("users/{username}", {"JUPYTERHUB_USER": ""}, False),
        ("users/{user}", HUB, False),  # an unknown field
        ("nb-{username}", {"JUPYTERHUB_USER": "Alice.Smith"}, True),  # no bucket name
    ],
)
def test_what_cannot_be_filled_in_is_refused(
    template: str, env: dict[str, str], bucket: bool
) -> None:
    with pytest.raises(HubNameError):
        expand(template, env, setting="prefix", bucket=bucket)


def test_the_manager_resolves_its_prefix_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "ünï.user")
    monkeypatch.delenv("JUPYTERHUB_SERVER_NAME", raising=False)
    cm = S3ContentsManager(bucket="notebooks", prefix="users/{username}", anon=True)
    assert cm.prefix == "users/%C3%BCn%C3%AF%2Euser"
    assert cm.keys.key("a.ipynb") == "users/%C3%BCn%C3%AF%2Euser/a.ipynb"
    monkeypatch.delenv("JUPYTERHUB_USER")
    with pytest.raises(TraitError, match="JUPYTERHUB_USER is not set"):
        S3ContentsManager(bucket="notebooks", prefix="users/{username}", anon=True)
