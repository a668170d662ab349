"""jupyter_server's tests/services/contents/test_config.py, on our contents managers."""

from tests.upstream.upstream_support import load_upstream

globals().update(load_upstream("test_config"))
