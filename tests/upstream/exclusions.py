"""The upstream jupyter_server contents tests that are not run, and why.

The one list of exclusions: ``tests/upstream/conftest.py`` deselects what it names and
``tests/README.md`` ("Upstream jupyter_server tests") is generated from it.

Keys are upstream test ids relative to ``tests/services/contents/``: a whole module
(``"test_fileio.py"``), a test function with all its parameters
(``"test_manager.py::test_bad_symlink"``) or one parametrized case
(``"test_manager.py::test_delete_non_empty_folder[True-False-None]"``), for every backend;
``"gcs:<id>"`` (or ``"s3:<id>"``) leaves a test out on that backend only, for a limitation
of its test server, which the reason must name.
Only tests about the local file system itself (or about FileContentsManager's own
internals) belong here; a test that fails because our manager behaves differently
from FileContentsManager through the API is a bug to fix, not an exclusion.
"""

from __future__ import annotations

_CREATED = (
    "the `created` time of a local file (`st_birthtime`/`st_ctime` via `os.stat`/`os.lstat` "
    "on its OS path); objects have no creation time"
)
_IS_HIDDEN = (
    "patches `is_hidden` of jupyter_core and of filemanager.py (FileContentsManager's check "
    "of hidden files on disk) and, once `allow_hidden` is False again, expects that patched "
    "function to be called; our managers decide from the path alone (their answer, 404, "
    "is checked by the other hidden-file tests)"
)
_SYMLINK = "symbolic links on the local file system"

EXCLUDED: dict[str, str] = {
    # -- test_fileio.py: jupyter_server's local file writing -----------------------------
    "test_fileio.py": (
        "jupyter_server's helpers for local files (`atomic_writing`, `path_to_intermediate`, "
        "umask and permissions, `FileManagerMixin`, `_get_os_path`); our managers "
        "writes whole objects and never uses them"
    ),
    # -- test_manager.py -------------------------------------------------------------------
    "test_manager.py::test_root_dir": (
        "FileContentsManager's `root_dir`, a local directory; our managers serve a "
        "bucket and prefix (the test would pass vacuously)"
    ),
    "test_manager.py::test_missing_root_dir": "a `root_dir` that does not exist on disk",
    "test_manager.py::test_invalid_root_dir": "a `root_dir` that is a local file",
    "test_manager.py::test_get_os_path": "`_get_os_path`: API path to local OS path",
    "test_manager.py::test_get_os_path_posix": "`_get_os_path`: API path to local OS path",
    "test_manager.py::test_checkpoint_subdir": (
        "`FileCheckpoints.checkpoint_path`, where checkpoints go on local disk"
    ),
    "test_manager.py::test_bad_symlink": _SYMLINK,
    "test_manager.py::test_recursive_symlink": _SYMLINK,
    "test_manager.py::test_good_symlink": _SYMLINK,
    "test_manager.py::test_403": "permissions of a local file (`os.chmod`)",
    "test_manager.py::test_delete_non_empty_folder[True-False-None]": (
        "the expected outcome is computed from whether `root_dir` and the home directory are "
        "on the same device (where send2trash can put a trash); object storage has no "
        "trash, and `delete_to_trash` deleting the folder is checked by the other cases"
    ),
    "test_manager.py::test_copy_big_dir": (
        "`max_copy_folder_size_mb` is a FileContentsManager setting (a folder copied through "
        "local disk); `_make_big_dir` writes 10,000 local files"
    ),
    "test_manager.py::test_regression_is_hidden": _IS_HIDDEN,
    "test_manager.py::test_created_timestamp": (
        "`os.stat`/`os.utime` on the file's OS path, to check `created` (`st_birthtime`/"
        "`st_ctime`) against `last_modified`; objects have no creation time"
    ),
    "test_manager.py::test_created_uses_birthtime_on_macos": _CREATED,
    "test_manager.py::test_created_uses_ctime_on_windows": _CREATED,
    "test_manager.py::test_created_timestamp_fallback_to_epoch": (
        "mocks `os.lstat` of the local file to feed FileContentsManager invalid timestamps"
    ),
    "test_manager.py::test_base_model_invalid_timestamp_fallback": (
        "mocks `os.lstat` of the local file to feed FileContentsManager invalid timestamps"
    ),
    **{
        f"test_manager.py::test_get_created_timestamp_{case}": (
            "unit test of filemanager.py's `_get_created_timestamp` (`st_birthtime`/`st_ctime`)"
        )
        for case in (
            "uses_birthtime",
            "fallback_no_birthtime",
            "accepts_zero_birthtime",
            "fallback_negative_birthtime",
            "fallback_infinite_birthtime",
            "fallback_nan_birthtime",
            "fallback_none_birthtime",
            "fallback_string_birthtime",
        )
    },
    # -- test_api.py -----------------------------------------------------------------------
    "test_api.py::test_regression_is_hidden": _IS_HIDDEN,
    # -- test_config.py --------------------------------------------------------------------
    "test_config.py::test_config_did_something": (
        "configures `FileContentsManager.checkpoints_class` with jupyter_server's file "
        "checkpoint classes (checkpoints on local disk) and checks the server's manager uses "
        "them; our managers keep their checkpoints in the bucket"
    ),
    # -- test_manager_no_hash.py -----------------------------------------------------------
    "test_manager_no_hash.py::test_manager_no_hash_support": (
        "runs the server on `NoHashFileManager`, a FileContentsManager subclass without "
        "`require_hash`, on a file written to the server's `root_dir` on disk: the server's "
        "support of old local managers, not the configured manager"
    ),
}
