"""Unit tests of the error vocabulary and its one mapping to HTTP status codes."""

from __future__ import annotations

from typing import cast

import pytest
from tornado.web import HTTPError

from s3contents import errors
from s3contents.errors import (
    HTTP_STATUS,
    AlreadyExists,
    BadCredentials,
    BadRequest,
    Conflict,
    ContentsError,
    Forbidden,
    NotEmpty,
    NotFound,
    TooLarge,
    Unavailable,
    status_of,
    to_http_error,
)

EXPECTED: dict[type[ContentsError], int] = {
    BadRequest: 400,
    NotEmpty: 400,  # jupyter_server answers 400 for "Directory not empty"
    Forbidden: 403,
    BadCredentials: 403,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    TooLarge: 413,
    Unavailable: 503,
}


def test_table_is_exactly_the_documented_one() -> None:
    assert HTTP_STATUS == EXPECTED


def test_every_public_error_has_a_status() -> None:
    public = {
        getattr(errors, name)
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), ContentsError)
    }
    assert public - {ContentsError} == set(HTTP_STATUS)


#: EXPECTED by status (apart from the decorator, where mypy would infer ``object`` items).
_BY_STATUS = sorted(EXPECTED.items(), key=lambda kv: kv[1])


@pytest.mark.parametrize(("cls", "status"), _BY_STATUS)
def test_to_http_error(cls: type[ContentsError], status: int) -> None:
    err = cls("something about a/b.txt", path="a/b.txt")
    assert status_of(err) == status
    http = to_http_error(err)
    assert isinstance(http, HTTPError)
    assert http.status_code == status
    assert http.log_message == "something about a/b.txt"


def test_subclass_takes_its_parents_status() -> None:
    class NoSuchUpload(NotFound):
        pass

    assert status_of(NoSuchUpload("gone")) == 404


def test_unknown_error_is_500() -> None:
    class Strange(ContentsError):
        pass

    assert status_of(Strange("?")) == 500
    assert status_of(ContentsError("?")) == 500
    assert cast(HTTPError, to_http_error(Strange("?"))).status_code == 500


def test_error_carries_message_and_path() -> None:
    err = NotFound("No such file: x", path="x")
    assert str(err) == "No such file: x"
    assert err.message == "No such file: x"
    assert err.path == "x"
    assert NotFound("no path").path is None
    assert isinstance(err, Exception)


def test_to_http_error_keeps_percent_signs_literal() -> None:
    # tornado formats log_message with args only when args are given: a path with '%'
    # must not break the message.
    http = to_http_error(BadRequest("bad name 100%s.txt"))
    assert "100%s.txt" in str(http)
