"""Fixtures for the tests with the software users run beside the manager (jupytext): see
``tests.support.s3_fixtures``."""

from tests.support.s3_fixtures import (  # noqa: F401  (fixtures)
    cm,
    extra_cm_config,
    jp_server_config,
    jp_serverapp,
    make_cm,
    s3,
)
