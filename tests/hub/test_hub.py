"""s3contents under a real JupyterHub: one configuration, one prefix per user (issue 16).

JupyterHub 6 with its Node.js proxy (configurable-http-proxy from npm), a password
authenticator and a local process spawner; two users, ``alice`` and ``zoë.smith`` (a name
s3contents writes ``zo%C3%AB%2Esmith`` in keys), each logging in through ``/hub/login``'s
form and getting JupyterLab (``jupyterhub-singleuser``) on ``S3ContentsManager`` with
``prefix = "users/{username}"`` in one bucket on SeaweedFS, configured as docs/jupyterhub.md
configures Zero to JupyterHub (``JPY_S3_*`` in the spawner's environment, the contents
manager class in a ``jupyter_server_config.py``). Everything goes through the
proxy's public URL, as a browser's or a script's requests do; the bucket is read with boto3.
One hub serves the module (starting it and both servers takes most of its time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

from s3contents.hubnames import escape_segment
from tests.hub.hub_support import PREFIX_TEMPLATE, USERS, Hub, as_json
from tests.support.servers import S3Server

pytestmark = [pytest.mark.hub, pytest.mark.timeout(240)]

ALICE, ZOE = USERS


@dataclass
class Person:
    """A hub user as the test drives her: her browser session (logged in) and an API token."""

    name: str
    session: requests.Session
    landed: str
    token: str = ""

    @property
    def url(self) -> str:
        """Her server's path on the proxy (the name quoted as the hub does)."""
        return f"/user/{quote(self.name)}"

    @property
    def prefix(self) -> str:
        return f"users/{escape_segment(self.name)}/"


def _notebook(user: str) -> dict[str, Any]:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "id": "who", "metadata": {}, "source": f"by {user}"},
        ],
    }


def _files(user: str) -> dict[str, dict[str, Any]]:
    """What each user saves, by API path: the same names for both users (but one) with her
    own contents in each, a folder, and a file named after her."""
    return {
        "analysis.ipynb": {"type": "notebook", "format": "json", "content": _notebook(user)},
        "data": {"type": "directory"},
        "data/readme.txt": {"type": "file", "format": "text", "content": f"{user}'s data\n"},
        f"{user}.txt": {"type": "file", "format": "text", "content": f"only {user}\n"},
    }


def _contents(
    hub: Hub,
    person: Person,
    path: str = "",
    method: str = "GET",
    *,
    server: str | None = None,
    body: Any = None,
) -> requests.Response:
    """A contents API request with ``person``'s token, to ``server``'s server (her own by
    default), through the proxy."""
    owner = person.name if server is None else server
    url = f"{hub.url}/user/{quote(owner)}/api/contents/{quote(path)}".rstrip("/")
    return person.session.request(
        method,
        url,
        headers={"Authorization": f"token {person.token}"},
        data=None if body is None else json.dumps(body),
        allow_redirects=False,
        timeout=60,
    )


@pytest.fixture(scope="module")
def people(hub: Hub) -> dict[str, Person]:
    """Both users logged in through ``/hub/login`` (which starts their servers: both start
    at once), each server ready, each user with an API token from the hub's REST API."""
    people = {}
    for name in USERS:
        session = hub.session()
        landed = hub.login(session, name)
        assert landed.status_code == 200, (name, landed.status_code, landed.url)
        people[name] = Person(name, session, landed.url)
    for person in people.values():
        hub.wait_ready(person.name)
        person.token = hub.user_token(person.name)
    return people


@pytest.fixture(scope="module")
def saved(hub: Hub, people: dict[str, Person]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each user's files, saved through her own server (201 each); user -> path -> model."""
    written = {}
    for name, person in people.items():
        files = _files(name)
        for path, body in files.items():
            answer = _contents(hub, person, path, "PUT", body=body)
            assert answer.status_code == 201, (name, path, answer.status_code, as_json(answer))
        written[name] = files
    return written


def test_login_starts_jupyterlab(hub: Hub, people: dict[str, Person]) -> None:
    """The login form's redirects end at the spawn's page (or, on a fast machine, the
    server itself); the session then opens JupyterLab through the hub's OAuth."""
    for person in people.values():
        path = urlsplit(person.landed).path
        assert path in (f"/hub/spawn-pending/{quote(person.name)}", f"{person.url}/lab"), (
            person.landed
        )
        server = hub.user_model(person.name)["servers"][""]
        assert server["url"] == f"{person.url}/"
        page = person.session.get(f"{hub.url}{person.url}/lab", timeout=60)
        assert page.status_code == 200, page.status_code
        assert urlsplit(page.url).path == f"{person.url}/lab"
        assert "<title>JupyterLab</title>" in page.text
        # the OAuth round trip went through the hub
        assert any(
            "/hub/api/oauth2/authorize" in r.headers.get("Location", "") for r in page.history
        )


def test_login_refused(hub: Hub) -> None:
    """A wrong password, and the right one for a user the hub does not allow, get the login
    page back (403) and no server."""
    for user, password in ((ALICE, "not-the-password"), ("mallory", None)):
        with hub.session() as session:
            answer = hub.login(session, user, password)
        assert answer.status_code == 403, (user, answer.status_code, answer.url)
        assert urlsplit(answer.url).path == "/hub/login"
        assert "Invalid username or password" in answer.text
    assert hub.admin("GET", "/users/mallory").status_code == 404


def test_each_user_sees_only_her_own(
    hub: Hub, people: dict[str, Person], saved: Mapping[str, Mapping[str, Any]]
) -> None:
    for name, person in people.items():
        root = _contents(hub, person)
        assert root.status_code == 200, as_json(root)
        listed = {entry["name"]: entry["type"] for entry in root.json()["content"]}
        assert listed == {
            "analysis.ipynb": "notebook",
            "data": "directory",
            f"{name}.txt": "file",
        }
        folder = _contents(hub, person, "data").json()
        assert [entry["path"] for entry in folder["content"]] == ["data/readme.txt"]
        notebook = _contents(hub, person, "analysis.ipynb").json()
        assert notebook["content"]["cells"][0]["source"] == f"by {name}"
        readme = _contents(hub, person, "data/readme.txt").json()
        assert readme["content"] == f"{name}'s data\n"


def test_objects_land_under_each_users_prefix(
    seaweedfs: S3Server,
    hub_bucket: str,
    people: dict[str, Person],
    saved: Mapping[str, Mapping[str, Any]],
) -> None:
    """Every object is under ``users/<name escaped>/``: ``users/alice/`` and
    ``users/zo%C3%AB%2Esmith/``, nothing else in the bucket."""
    assert people[ZOE].prefix == "users/zo%C3%AB%2Esmith/"
    keys: set[str] = set()
    for page in seaweedfs.admin.get_paginator("list_objects_v2").paginate(Bucket=hub_bucket):
        keys.update(item["Key"] for item in page.get("Contents", []))
    expected: set[str] = set()
    for name, person in people.items():
        expected |= {
            f"{person.prefix}analysis.ipynb",
            f"{person.prefix}data/.s3keep",
            f"{person.prefix}data/readme.txt",
            f"{person.prefix}{name}.txt",
        }
    assert keys == expected
    for name, person in people.items():
        body = seaweedfs.admin.get_object(Bucket=hub_bucket, Key=f"{person.prefix}data/readme.txt")
        assert body["Body"].read().decode() == f"{name}'s data\n"


def test_a_token_opens_only_its_users_server(
    hub: Hub,
    seaweedfs: S3Server,
    hub_bucket: str,
    people: dict[str, Person],
    saved: Mapping[str, Mapping[str, Any]],
) -> None:
    """One user's token on the other's server (both ways): 403 ``Forbidden`` for reading,
    writing, renaming and deleting (answered by the owner's server, which asks the hub about
    the token); nothing of the owner's in the answers, and her objects untouched. A logged-in
    browser session fares the same: the hub refuses it the OAuth for the other's server."""
    for intruder, owner in ((people[ALICE], people[ZOE]), (people[ZOE], people[ALICE])):
        before = _objects(seaweedfs, hub_bucket, owner.prefix)
        assert len(before) == 4
        scribble = {"type": "file", "format": "text", "content": f"{intruder.name} was here"}
        tries = [
            ("GET", "", None),
            ("GET", "data", None),
            ("GET", "data/readme.txt", None),
            ("GET", "analysis.ipynb", None),
            ("PUT", "data/readme.txt", scribble),
            ("PUT", "intruder.txt", scribble),
            ("PATCH", "analysis.ipynb", {"path": "stolen.ipynb"}),
            ("DELETE", f"{owner.name}.txt", None),
        ]
        for method, path, body in tries:
            answer = _contents(hub, intruder, path, method, server=owner.name, body=body)
            assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
            assert answer.json() == {"message": "Forbidden", "reason": None}
            _assert_nothing_of(owner.name, answer.text)
        assert _objects(seaweedfs, hub_bucket, owner.prefix) == before
        # the owner's own token still works there, and her listing is unchanged
        mine = _contents(hub, owner)
        assert mine.status_code == 200
        assert {e["name"] for e in mine.json()["content"]} == {
            "analysis.ipynb",
            "data",
            f"{owner.name}.txt",
        }

        page = intruder.session.get(f"{hub.url}{owner.url}/lab", timeout=60)
        assert page.status_code == 403, (page.status_code, page.url)
        assert urlsplit(page.url).path == "/hub/api/oauth2/authorize"
        _assert_nothing_of(owner.name, page.text)


def _assert_nothing_of(owner: str, text: str) -> None:
    for content in (f"{owner}'s data", f"by {owner}", f"only {owner}"):
        assert content not in text


def _objects(s3: S3Server, bucket: str, prefix: str) -> dict[str, str]:
    """Key -> ETag of every object under ``prefix``."""
    found = {}
    for page in s3.admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update({item["Key"]: item["ETag"] for item in page.get("Contents", [])})
    return found


def test_the_resolved_prefix_is_logged(
    hub: Hub, hub_bucket: str, people: dict[str, Person]
) -> None:
    for name, person in people.items():
        log = hub.single_user_log(name)
        resolved = person.prefix.rstrip("/")
        assert f"prefix {PREFIX_TEMPLATE!r} is {resolved!r} for this server" in log, log[-3000:]
        assert f"Serving contents from s3://{hub_bucket}/{resolved}\n" in log


def test_no_secret_in_any_log(
    hub: Hub, seaweedfs: S3Server, people: dict[str, Person], saved: Mapping[str, Any]
) -> None:
    """The S3 secret key, the password and the tokens appear in no log: the hub's (with its
    proxy's) and each user's server's."""
    secrets_ = {
        "S3 secret key": seaweedfs.secret_access_key,
        "password": hub.password,
        "admin token": hub.admin_token,
        **{f"{name}'s token": person.token for name, person in people.items()},
    }
    logs = hub.logs()
    assert set(logs) == {"hub", *USERS}
    for log_name, text in logs.items():
        assert text, log_name
        leaked = [what for what, value in secrets_.items() if value in text]
        assert not leaked, f"{', '.join(leaked)} in {log_name}'s log"
