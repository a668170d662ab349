"""Unit tests of the path rules (``s3contents.paths``): no server, no I/O but ``tmp_path``."""

from __future__ import annotations

import os

import pytest

from s3contents.errors import BadRequest, NotFound
from s3contents.paths import (
    CHECKPOINT_DIR,
    MAX_KEY_BYTES,
    MAX_NAME_BYTES,
    KeyMapper,
    is_hidden_path,
    join_api,
    matches_globs,
    normalize_api_path,
    split_api,
)

# --------------------------------------------------------------------------- normalize_api_path


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, ""),
        ("", ""),
        ("/", ""),
        ("///", ""),
        ("a", "a"),
        ("/a/b/", "a/b"),
        ("//a/b.ipynb", "a/b.ipynb"),
        ("a b/c d.txt", "a b/c d.txt"),
        ("über/naïve.ipynb", "über/naïve.ipynb"),
        (".hidden/x", ".hidden/x"),
        ("a..b/..c/d..", "a..b/..c/d.."),  # dots inside a name are just characters
        ("a. /b .txt/c.", "a. /b .txt/c."),  # trailing dots and spaces are plain characters
        ("%41", "%41"),  # percent signs are kept: keys are literal
        ("%252e%252e", "%252e%252e"),  # doubly encoded: a literal name, not a traversal
        ("ab:c/d", "ab:c/d"),  # a colon after two letters is no drive
        ("x" * MAX_NAME_BYTES, "x" * MAX_NAME_BYTES),
    ],
)
def test_normalize_accepts(given: str | None, expected: str) -> None:
    assert normalize_api_path(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "..",
        "../x",
        "a/..",
        "a/../b",
        "a/../../etc/passwd",
        ".",
        "./a",
        "a/./b",
        "a/.",
        "%2e%2e",
        "%2E%2e/secret",
        "a/%2e%2e/b",
        "%2e",
        ".%2e",
        "%2e.",
        "a%2fb",  # an encoded slash would change the folder structure
        "a/%2F..",
        " .. ",
        "a/ . /b",
        "C:/Windows",
        "c:",
        "z:x",
    ],
)
def test_normalize_refuses_leaving_the_root(given: str) -> None:
    with pytest.raises(NotFound):
        normalize_api_path(given)


@pytest.mark.parametrize(
    "given",
    [
        "a\\b",
        "..\\..\\x",
        "C:\\Windows",
        "a\x00b",
        "nul\x00",
        "a\tb",
        "a\nb",
        "a\rb",
        "\x1b[31mred",
        "a\x7fb",
        "a\x85b",  # C1 control
        "a\x9fb",
        "a\u2028b",
        "a\u2029b",
        "\ufeffbom",
    ],
)
def test_normalize_refuses_control_characters_and_backslashes(given: str) -> None:
    with pytest.raises(BadRequest, match="control character or a backslash"):
        normalize_api_path(given)


@pytest.mark.parametrize(
    "given",
    [" ", "   ", "...", "....", ". .", " . . ", "a/ /b", "a/.../b", "\u00a0", "%20", "%2e%2e%2e"],
)
def test_normalize_refuses_names_of_only_dots_and_spaces(given: str) -> None:
    with pytest.raises(BadRequest, match="only dots and spaces"):
        normalize_api_path(given)


@pytest.mark.parametrize("checkpoint_id", ["", "a/b", "../../x", "a\\b", "a\x00b", "a\nb"])
def test_checkpoint_ids_cannot_add_a_folder_level(checkpoint_id: str) -> None:
    with pytest.raises(BadRequest, match="Invalid checkpoint id"):
        KeyMapper(prefix="p").checkpoint_key("a/nb.ipynb", checkpoint_id)


@pytest.mark.parametrize("given", ["a//b", "a///b/c", "/a//b/", "a/b//c"])
def test_normalize_refuses_empty_segments(given: str) -> None:
    with pytest.raises(BadRequest, match="empty segment"):
        normalize_api_path(given)


@pytest.mark.parametrize(
    "name",
    [
        "x" * (MAX_NAME_BYTES + 1),
        "é" * (MAX_NAME_BYTES // 2 + 1),  # 2 bytes each in UTF-8: counted in bytes
        "🙂" * (MAX_NAME_BYTES // 4 + 1),
    ],
)
def test_normalize_refuses_names_too_long(name: str) -> None:
    with pytest.raises(BadRequest, match="longer than"):
        normalize_api_path(f"folder/{name}")


@pytest.mark.parametrize("given", [b"a", 1, ["a"]])
def test_normalize_refuses_non_strings(given: object) -> None:
    with pytest.raises(BadRequest, match="must be a string"):
        normalize_api_path(given)  # type: ignore[arg-type]


def test_normalize_errors_carry_the_path() -> None:
    with pytest.raises(NotFound) as info:
        normalize_api_path("/a/../b/")
    assert info.value.path == "a/../b"
    with pytest.raises(BadRequest) as bad:
        normalize_api_path("a//b")
    assert bad.value.path == "a//b"


def test_normalize_is_idempotent() -> None:
    for given in ["/a/b/", "x", "über/naïve.ipynb", "%252e"]:
        once = normalize_api_path(given)
        assert normalize_api_path(once) == once


# --------------------------------------------------------------------------- split / join


@pytest.mark.parametrize(
    ("api_path", "parent", "name"),
    [("a/b/c.txt", "a/b", "c.txt"), ("c.txt", "", "c.txt"), ("a/b", "a", "b")],
)
def test_split_and_join_are_inverse(api_path: str, parent: str, name: str) -> None:
    assert split_api(api_path) == (parent, name)
    assert join_api(parent, name) == api_path


# --------------------------------------------------------------------------- hidden rule


@pytest.mark.parametrize(
    ("api_path", "hidden"),
    [
        ("", False),
        ("a", False),
        ("a/b.ipynb", False),
        ("a.b/c", False),
        (".a", True),
        ("a/.b", True),
        (".a/b", True),
        ("a/.b/c.txt", True),
        (f"x/{CHECKPOINT_DIR}/nb-checkpoint.ipynb", True),
        (".s3keep", True),
    ],
)
def test_hidden_rule(api_path: str, hidden: bool) -> None:
    assert is_hidden_path(api_path) is hidden


def test_hide_globs() -> None:
    globs = ["__pycache__", "*.pyc", "*~"]
    assert matches_globs("__pycache__", globs)
    assert matches_globs("mod.pyc", globs)
    assert matches_globs("notes.txt~", globs)
    assert not matches_globs("mod.py", globs)
    assert not matches_globs("anything", [])


# --------------------------------------------------------------------------- KeyMapper


@pytest.mark.parametrize(
    ("prefix", "stored", "root"),
    [
        ("", "", ""),
        ("/", "", ""),
        ("//", "", ""),
        ("users/alice", "users/alice", "users/alice/"),
        ("/users/alice", "users/alice", "users/alice/"),
        ("users/alice/", "users/alice", "users/alice/"),
        ("/users//alice//", "users/alice", "users/alice/"),
        ("p", "p", "p/"),
    ],
)
def test_prefix_ignores_leading_and_trailing_delimiters(
    prefix: str, stored: str, root: str
) -> None:
    keys = KeyMapper(prefix=prefix)
    assert keys.prefix == stored
    assert keys.root == root
    assert keys.dir_prefix("") == root
    assert keys.key("a/b.txt") == f"{root}a/b.txt"


@pytest.mark.parametrize("prefix", ["..", "a/../b", "./a", "a/.", "a\x00b", "a\\b"])
def test_prefix_refuses_escaping_segments(prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid segment"):
        KeyMapper(prefix=prefix)


def test_empty_delimiter_is_refused() -> None:
    with pytest.raises(ValueError, match="delimiter"):
        KeyMapper(prefix="a", delimiter="")


def test_keys_without_prefix() -> None:
    keys = KeyMapper()
    assert keys.key("nb.ipynb") == "nb.ipynb"
    assert keys.key("a/b/nb.ipynb") == "a/b/nb.ipynb"
    assert keys.dir_prefix("a/b") == "a/b/"
    assert keys.marker_key("") == ".s3keep"
    assert keys.marker_key("a/b") == "a/b/.s3keep"


def test_keys_with_prefix() -> None:
    keys = KeyMapper(prefix="/team/alice/")
    assert keys.key("nb.ipynb") == "team/alice/nb.ipynb"
    assert keys.dir_prefix("work") == "team/alice/work/"
    assert keys.marker_key("work") == "team/alice/work/.s3keep"
    assert keys.marker_key("") == "team/alice/.s3keep"


def test_gcs_marker_name() -> None:
    keys = KeyMapper(prefix="p", marker=".gcskeep")
    assert keys.marker_key("f") == "p/f/.gcskeep"


def test_root_is_not_a_file() -> None:
    with pytest.raises(BadRequest, match="root is a folder"):
        KeyMapper(prefix="p").key("")


def test_non_slash_delimiter() -> None:
    keys = KeyMapper(prefix="|team||alice|", delimiter="|")
    assert keys.prefix == "team|alice"
    assert keys.root == "team|alice|"
    assert keys.key("a/b.txt") == "team|alice|a|b.txt"
    assert keys.dir_prefix("a") == "team|alice|a|"
    assert keys.marker_key("a/b") == "team|alice|a|b|.s3keep"
    assert keys.checkpoint_key("a/nb.ipynb", "checkpoint") == (
        f"team|alice|a|{CHECKPOINT_DIR}|nb-checkpoint.ipynb"
    )
    assert keys.api_path("team|alice|a|b.txt") == "a/b.txt"
    assert keys.api_path("team|alice|a|b|") == "a/b"
    # A slash is then an ordinary character of a key, but the API cannot address it.
    assert keys.child_name("team|alice|", "team|alice|x/y") == "x/y"


def test_non_slash_delimiter_refuses_names_containing_it() -> None:
    keys = KeyMapper(delimiter="|")
    with pytest.raises(BadRequest, match="delimiter"):
        keys.key("a|b")


def test_key_length_limit_counts_prefix_and_bytes() -> None:
    name = "n" * 200
    api_path = "/".join([name] * 5)  # 1004 bytes: fits without a prefix
    assert len(KeyMapper().key(api_path).encode()) == 1004 <= MAX_KEY_BYTES
    with pytest.raises(BadRequest, match="too long"):
        KeyMapper(prefix="p" * 30).key(api_path)
    with pytest.raises(BadRequest, match="too long"):
        KeyMapper().key("/".join(["é" * 100] * 6))  # 1205 bytes, 605 characters


@pytest.mark.parametrize(
    ("api_path", "expected"),
    [
        ("nb.ipynb", f"{CHECKPOINT_DIR}/nb-checkpoint.ipynb"),
        ("a/b/nb.ipynb", f"a/b/{CHECKPOINT_DIR}/nb-checkpoint.ipynb"),
        ("a/data.tar.gz", f"a/{CHECKPOINT_DIR}/data.tar-checkpoint.gz"),
        ("Makefile", f"{CHECKPOINT_DIR}/Makefile-checkpoint"),
        ("a/.bashrc", f"a/{CHECKPOINT_DIR}/.bashrc-checkpoint"),
    ],
)
def test_checkpoint_key_layout(api_path: str, expected: str) -> None:
    assert KeyMapper().checkpoint_key(api_path, "checkpoint") == expected
    assert KeyMapper(prefix="p/q").checkpoint_key(api_path, "checkpoint") == f"p/q/{expected}"


@pytest.mark.parametrize("api_path", ["nb.ipynb", "a/b/nb.ipynb", "a/data.tar.gz", "a/.bashrc"])
def test_checkpoint_key_matches_jupyters_file_checkpoints(
    tmp_path: os.PathLike, api_path: str
) -> None:
    """The layout is exactly the one jupyter_server's FileCheckpoints uses on disk."""
    from jupyter_server.services.contents.filecheckpoints import FileCheckpoints

    root = str(tmp_path)
    parent, _ = split_api(api_path)
    os.makedirs(os.path.join(root, *parent.split("/")), exist_ok=True)
    local = FileCheckpoints(root_dir=root).checkpoint_path("checkpoint", api_path)
    relative = os.path.relpath(local, root).replace(os.sep, "/")
    assert KeyMapper().checkpoint_key(api_path, "checkpoint") == relative


@pytest.mark.parametrize("prefix", ["", "p", "a/b/c"])
@pytest.mark.parametrize("api_path", ["x", "a/b.ipynb", "über/naïve.txt", ".hidden/x"])
def test_api_path_round_trip(prefix: str, api_path: str) -> None:
    keys = KeyMapper(prefix=prefix)
    assert keys.api_path(keys.key(api_path)) == api_path
    assert keys.api_path(keys.dir_prefix(api_path)) == api_path
    assert keys.api_path(keys.root) == ""


@pytest.mark.parametrize(
    ("prefix", "key"),
    [("p", "q/x"), ("p", "px"), ("a/b", "a/bc/x"), ("a/b", "a/x")],
)
def test_api_path_refuses_keys_outside_the_prefix(prefix: str, key: str) -> None:
    with pytest.raises(ValueError, match="outside the prefix"):
        KeyMapper(prefix=prefix).api_path(key)


def test_child_name() -> None:
    keys = KeyMapper(prefix="p")
    folder = keys.dir_prefix("f")
    assert keys.child_name(folder, "p/f/nb.ipynb") == "nb.ipynb"
    assert keys.child_name(folder, "p/f/sub/") == "sub"
