"""Fixtures for the manager's own behaviour tests (``tests/manager``): see ``s3_fixtures``."""

from tests.support.s3_fixtures import (  # noqa: F401  (fixtures)
    cm,
    extra_cm_config,
    jp_server_config,
    jp_serverapp,
    make_cm,
    s3,
)
