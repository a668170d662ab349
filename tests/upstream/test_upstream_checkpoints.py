"""jupyter_server's tests/services/contents/test_checkpoints.py, on our contents managers."""

from upstream_support import load_upstream

globals().update(load_upstream("test_checkpoints"))
