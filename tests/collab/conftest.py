"""Fixtures of the real-time collaboration tests (``tests/collab``): see ``s3_fixtures``.

``test_collab.py`` overrides ``jp_server_config`` to run jupyter-collaboration's server
extensions; ``jp_serverapp`` closes the server's contents manager after the test.
"""

from tests.support.s3_fixtures import (  # noqa: F401  (fixtures)
    cm,
    jp_serverapp,
    make_cm,
    s3,
)
