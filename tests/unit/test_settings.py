"""Unit tests of settings: environment variables, bucket names, construction-time checks.

No server is contacted: constructing an ``S3ContentsManager`` builds its S3 adapter, whose
client is created lazily on first use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any, cast

import pytest
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Float, Int, TraitError, Unicode
from traitlets.config import Config, Configurable

from s3contents.s3.manager import S3ContentsManager, validate_bucket
from s3contents.s3.storage import S3Storage
from s3contents.settings import apply_environment, configured_names, parse_env_value

# --------------------------------------------------------------------------- apply_environment


class Settings(Configurable):
    name = Unicode("default", config=True).tag(env=("T_NAME", "T_NAME_OLD"))
    flag = Bool(False, config=True).tag(env="T_FLAG")
    count = Int(3, config=True).tag(env="T_COUNT")
    ratio = Float(0.5, config=True).tag(env="T_RATIO")
    mapping = Dict(config=True).tag(env="T_MAPPING")
    loose = AnyTrait(None, allow_none=True, config=True).tag(env="T_LOOSE", env_json=True)
    untagged = Unicode("plain", config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.used = apply_environment(self, configured_names(self, kwargs))


ENV_NAMES = ("T_NAME", "T_NAME_OLD", "T_FLAG", "T_COUNT", "T_RATIO", "T_MAPPING", "T_LOOSE")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_without_environment(env: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert (s.name, s.flag, s.count, s.ratio, s.mapping, s.loose) == (
        "default",
        False,
        3,
        0.5,
        {},
        None,
    )
    assert s.used == {}


def test_environment_sets_each_trait_type(env: pytest.MonkeyPatch) -> None:
    env.setenv("T_NAME", "from env")
    env.setenv("T_FLAG", "yes")
    env.setenv("T_COUNT", "42")
    env.setenv("T_RATIO", "2.5")
    env.setenv("T_MAPPING", '{"a": {"b": 1}}')
    env.setenv("T_LOOSE", '{"read_timeout": 5}')
    s = Settings()
    assert s.name == "from env"
    assert s.flag is True
    assert s.count == 42
    assert s.ratio == 2.5
    assert s.mapping == {"a": {"b": 1}}
    assert s.loose == {"read_timeout": 5}
    assert s.used == {
        "name": "T_NAME",
        "flag": "T_FLAG",
        "count": "T_COUNT",
        "ratio": "T_RATIO",
        "mapping": "T_MAPPING",
        "loose": "T_LOOSE",
    }


def test_first_variable_wins_and_the_older_spelling_works(env: pytest.MonkeyPatch) -> None:
    env.setenv("T_NAME_OLD", "old")
    assert Settings().name == "old"
    env.setenv("T_NAME", "new")
    assert Settings().name == "new"


def test_empty_string_is_a_value(env: pytest.MonkeyPatch) -> None:
    env.setenv("T_NAME", "")
    env.setenv("T_FLAG", "")
    s = Settings()
    assert s.name == ""
    assert s.flag is False


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("TRUE", True), (" on ", True), ("Yes", True), ("0", False), ("off", False)],
)
def test_bool_spellings(env: pytest.MonkeyPatch, raw: str, value: bool) -> None:
    env.setenv("T_FLAG", raw)
    assert Settings().flag is value


def test_keyword_arguments_beat_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("T_NAME", "env")
    env.setenv("T_COUNT", "7")
    env.setenv("T_FLAG", "true")
    s = Settings(name="kwarg", count=3)  # 3 is also the default: still explicit
    assert s.name == "kwarg"
    assert s.count == 3
    assert s.flag is True  # not given: the environment applies
    assert set(s.used) == {"flag"}


def test_config_beats_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("T_NAME", "env")
    env.setenv("T_COUNT", "7")
    config = Config()
    config.Settings.name = "config"
    config.Settings.count = 3  # equal to the default, and still wins
    s = Settings(config=config)
    assert s.name == "config"
    assert s.count == 3


def test_config_of_a_parent_class_beats_environment(env: pytest.MonkeyPatch) -> None:
    class Child(Settings):
        pass

    env.setenv("T_NAME", "env")
    config = Config()
    config.Settings.name = "parent config"
    assert Child(config=config).name == "parent config"


@pytest.mark.parametrize(
    ("var", "raw", "message"),
    [
        ("T_FLAG", "maybe", "T_FLAG must be true or false"),
        ("T_COUNT", "4.5", "T_COUNT must be an integer"),
        ("T_COUNT", "many", "T_COUNT must be an integer"),
        ("T_RATIO", "half", "T_RATIO must be a number"),
        ("T_MAPPING", "{not json", "T_MAPPING must be a JSON object"),
        ("T_MAPPING", "[1, 2]", "T_MAPPING must be a JSON object"),
        ("T_LOOSE", '"text"', "T_LOOSE must be a JSON object"),
    ],
)
def test_bad_values_raise_trait_error_naming_the_variable(
    env: pytest.MonkeyPatch, var: str, raw: str, message: str
) -> None:
    env.setenv(var, raw)
    with pytest.raises(TraitError, match=message):
        Settings()


def test_parse_env_value_keeps_text() -> None:
    assert parse_env_value(Unicode(), "X", " spaced ") == " spaced "


# --------------------------------------------------------------------------- S3ContentsManager

#: A value to put in the environment for every trait with an ``env`` tag, and what the trait
#: must then hold. A new setting with an environment variable must be added here.
SAMPLES: dict[str, tuple[str, Any]] = {
    "access_key_id": ("AKIAEXAMPLEKEYID", "AKIAEXAMPLEKEYID"),
    "secret_access_key": ("env-secret-value-123", "env-secret-value-123"),
    "session_token": ("env-session-token", "env-session-token"),
    "anon": ("true", True),
    "lean_requests": ("false", False),
    "bucket": ("env-bucket", "env-bucket"),
    "prefix": ("users/alice", "users/alice"),
    "delimiter": ("|", "|"),
    "endpoint_url": ("http://127.0.0.1:9", "http://127.0.0.1:9"),
    "region_name": ("eu-west-3", "eu-west-3"),
    "signature_version": ("s3v4", "s3v4"),
    "sse": ("AES256", "AES256"),
    "kms_key_id": ("kms-key-1", "kms-key-1"),
    "skip_tls_verify": ("1", True),
    "s3fs_additional_kwargs": ('{"ACL": "private"}', {"ACL": "private"}),
    "s3fs_config_kwargs": ('{"read_timeout": 7}', {"read_timeout": 7}),
    "max_concurrency": ("7", 7),
    "upload_part_size": ("6291456", 6291456),
    "upload_timeout": ("12.5", 12.5),
    "request_timeout": ("2.5", 2.5),
    "rename_lease": ("12", 12.0),
    "role_arn": (
        "arn:aws:iam::123456789012:role/notebooks",
        "arn:aws:iam::123456789012:role/notebooks",
    ),
    "role_session_name": ("alice-notebooks", "alice-notebooks"),
    "role_duration_seconds": ("1800", 1800),
    "role_external_id": ("ext-id-123", "ext-id-123"),
    "sts_endpoint_url": ("http://127.0.0.1:9", "http://127.0.0.1:9"),
}
#: Settings that are only valid in pairs.
PARTNERS = {"access_key_id": "secret_access_key", "secret_access_key": "access_key_id"}


def _env_traits() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for name, trait in S3ContentsManager.class_traits().items():
        names = trait.metadata.get("env")
        if names:
            found[name] = (names,) if isinstance(names, str) else tuple(names)
    return found


ENV_TRAITS = _env_traits()
ENV_CASES = [(trait, var) for trait, names in ENV_TRAITS.items() for var in names]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for names in ENV_TRAITS.values():
        for var in names:
            monkeypatch.delenv(var, raising=False)
    yield monkeypatch


def test_every_env_trait_has_a_sample() -> None:
    assert set(ENV_TRAITS) == set(SAMPLES), "add the new setting to SAMPLES"
    assert len(ENV_CASES) >= 2 * 16  # the JPY_S3_* and JPYNB_S3_* spellings


@pytest.mark.parametrize(("trait", "names"), sorted(ENV_TRAITS.items()))
def test_env_variables_are_documented(trait: str, names: tuple[str, ...]) -> None:
    help_text = S3ContentsManager.class_traits()[trait].help
    assert names[0] in help_text, f"{trait}'s help does not name {names[0]}"
    if names[0].startswith("JPY_S3_"):
        assert names == (names[0], "JPYNB_S3_" + names[0][len("JPY_S3_") :])


@pytest.mark.parametrize(("trait", "var"), ENV_CASES, ids=[v for _, v in ENV_CASES])
def test_env_variable_sets_its_trait(clean_env: pytest.MonkeyPatch, trait: str, var: str) -> None:
    raw, expected = SAMPLES[trait]
    clean_env.setenv(var, raw)
    if trait in PARTNERS:
        partner = PARTNERS[trait]
        clean_env.setenv(ENV_TRAITS[partner][0], SAMPLES[partner][0])
    manager = S3ContentsManager()
    assert getattr(manager, trait) == expected
    default = S3ContentsManager.class_traits()[trait].default_value
    assert expected != default  # else this case would prove nothing


def test_env_reaches_the_storage_adapter(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("JPY_S3_BUCKET", "env-bucket")
    clean_env.setenv("JPYNB_S3_PREFIX", "|team|alice|")
    clean_env.setenv("JPY_S3_DELIMITER", "|")
    clean_env.setenv("S3CONTENTS_MAX_CONCURRENCY", "5")
    clean_env.setenv("S3CONTENTS_REQUEST_TIMEOUT", "7.5")
    manager = S3ContentsManager()
    assert manager.storage.url == "s3://env-bucket"
    assert manager.keys.prefix == "team|alice"
    assert manager.keys.key("a/b.txt") == "team|alice|a|b.txt"
    assert cast(S3Storage, manager.storage).max_concurrency == 5
    assert manager.storage.request_timeout == 7.5
    manager.request_timeout = 0  # 0: no limit, and a change reaches the built adapter
    assert manager.storage.request_timeout is None


def test_config_beats_env_for_the_manager(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("JPY_S3_BUCKET", "env-bucket")
    clean_env.setenv("JPY_S3_REGION_NAME", "eu-west-3")
    config = Config()
    config.S3ContentsManager.bucket = "config-bucket"
    manager = S3ContentsManager(config=config, region_name="us-east-1")
    assert manager.bucket == "config-bucket"
    assert manager.region_name == "us-east-1"


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("JPY_S3_ANON", "perhaps"),
        ("JPY_S3_S3FS_CONFIG_KWARGS", "[1]"),
        ("JPYNB_S3_S3FS_ADDITIONAL_KWARGS", "{oops"),
        ("S3CONTENTS_MAX_CONCURRENCY", "lots"),
        ("S3CONTENTS_UPLOAD_TIMEOUT", "soon"),
        ("S3CONTENTS_REQUEST_TIMEOUT", "never"),
    ],
)
def test_bad_env_value_fails_construction(
    clean_env: pytest.MonkeyPatch, var: str, raw: str
) -> None:
    clean_env.setenv(var, raw)
    with pytest.raises(TraitError, match=var):
        S3ContentsManager()


# --------------------------------------------------------------------------- validate_bucket

log = logging.getLogger("tests.unit.validate_bucket")


@pytest.mark.parametrize(
    ("given", "bucket", "warns"),
    [
        ("notebooks", "notebooks", False),
        ("  spaced  ", "spaced", False),
        ("s3://bucket", "bucket", True),
        ("s3://bucket/", "bucket", True),
        ("s3://bucket/some/key", "bucket", True),
        ("bucket/key", "bucket", True),
        ("bucket/deep/key/", "bucket", True),
        (
            "arn:aws:s3:us-east-1:123456789012:accesspoint/my-ap",
            "arn:aws:s3:us-east-1:123456789012:accesspoint/my-ap",
            False,
        ),
        (
            "s3://arn:aws:s3:us-east-1:123456789012:accesspoint/my-ap",
            "arn:aws:s3:us-east-1:123456789012:accesspoint/my-ap",
            False,
        ),
    ],
)
def test_validate_bucket_forms(
    caplog: pytest.LogCaptureFixture, given: str, bucket: str, warns: bool
) -> None:
    with caplog.at_level(logging.WARNING, logger=log.name):
        assert validate_bucket(given, log) == bucket
    warnings = [r for r in caplog.records if r.name == log.name]
    if warns:
        assert len(warnings) == 1
        assert warnings[0].levelno == logging.WARNING
        assert repr(bucket) in warnings[0].getMessage()
    else:
        assert warnings == []


def test_validate_bucket_warning_names_the_ignored_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=log.name):
        validate_bucket("s3://bucket/some/key", log)
    assert "'some/key'" in caplog.text
    assert "prefix" in caplog.text


@pytest.mark.parametrize(
    "given",
    ["", "   ", "http://bucket", "https://host/bucket", "/key", "s3:///key", "bucket;x?y=1"],
)
def test_validate_bucket_refuses(given: str) -> None:
    with pytest.raises(ValueError, match=r"bucket|Invalid"):
        validate_bucket(given, log)


def test_manager_cleans_the_bucket_name(clean_env: pytest.MonkeyPatch) -> None:
    manager = S3ContentsManager(bucket="s3://from-url/ignored/key")
    assert manager.bucket == "from-url"
    assert manager.storage.url == "s3://from-url"


def test_manager_refuses_an_empty_bucket(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="empty"):
        S3ContentsManager(bucket="")


# --------------------------------------------------------------------------- construction checks


@pytest.mark.parametrize(
    "kwargs",
    [
        {"NotAnS3Argument": 1},
        {"ACL": "private", "Acl": "private"},
        {"Bucket2": "x"},
    ],
)
def test_unknown_additional_kwargs_fail_at_construction(
    clean_env: pytest.MonkeyPatch, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TraitError, match="s3fs_additional_kwargs"):
        S3ContentsManager(s3fs_additional_kwargs=kwargs)


def test_known_additional_kwargs_are_accepted(clean_env: pytest.MonkeyPatch) -> None:
    manager = S3ContentsManager(
        s3fs_additional_kwargs={"ACL": "bucket-owner-full-control", "StorageClass": "STANDARD_IA"}
    )
    assert manager.s3fs_additional_kwargs["StorageClass"] == "STANDARD_IA"


@pytest.mark.parametrize(
    "kwargs",
    [{"no_such_option": 1}, {"read_timeout": 5, "retries": 3, "bogus": True}],
)
def test_bad_config_kwargs_fail_at_construction(
    clean_env: pytest.MonkeyPatch, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TraitError, match="s3fs_config_kwargs"):
        S3ContentsManager(s3fs_config_kwargs=kwargs)


@pytest.mark.parametrize("trait", ["s3fs_additional_kwargs", "s3fs_config_kwargs"])
def test_kwargs_settings_must_be_dicts(clean_env: pytest.MonkeyPatch, trait: str) -> None:
    with pytest.raises(TraitError, match="must be a dictionary"):
        S3ContentsManager(**{trait: "read_timeout=5"})


def test_good_config_kwargs_are_accepted(clean_env: pytest.MonkeyPatch) -> None:
    manager = S3ContentsManager(
        s3fs_config_kwargs={"s3": {"addressing_style": "path"}, "read_timeout": 120}
    )
    assert manager.s3fs_config_kwargs["read_timeout"] == 120


@pytest.mark.parametrize(
    "kwargs",
    [{"access_key_id": "AKIAONLYKEY"}, {"secret_access_key": "only-the-secret-value"}],
)
def test_half_a_key_pair_fails(clean_env: pytest.MonkeyPatch, kwargs: dict[str, str]) -> None:
    with pytest.raises(TraitError, match="together") as info:
        S3ContentsManager(**kwargs)
    assert "only-the-secret-value" not in str(info.value)


def test_half_a_key_pair_from_env_fails(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("JPY_S3_ACCESS_KEY_ID", "AKIAONLYKEY")
    with pytest.raises(TraitError, match="together"):
        S3ContentsManager()


def test_secrets_never_appear_in_repr_or_logs(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sEcReT-" + os.urandom(12).hex()
    token = "ToKeN-" + os.urandom(12).hex()
    env_secret = "EnvSeCrEt-" + os.urandom(12).hex()
    clean_env.setenv("JPYNB_S3_SESSION_TOKEN", token)
    with caplog.at_level(logging.DEBUG):
        manager = S3ContentsManager(
            access_key_id="AKIAEXAMPLE",
            secret_access_key=secret,
            bucket="s3://bucket/with/key",  # makes the manager log a warning
        )
        text = " ".join([repr(manager), str(manager), repr(manager.storage), manager.info_string()])
        with pytest.raises(TraitError) as bad:
            clean_env.setenv("JPY_S3_SECRET_ACCESS_KEY", env_secret)
            S3ContentsManager(bucket="x")
    assert manager.session_token == token  # the environment did reach the trait
    assert "Assuming you meant bucket 'bucket'" in caplog.text  # logs were captured
    for value in (secret, token, env_secret):
        assert value not in text
        assert value not in caplog.text
        assert value not in str(bad.value)
