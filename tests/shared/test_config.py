"""Configuration parsing and production safety."""

from __future__ import annotations

import logging

import pytest

from shared.config import DEV_SECRET, Config, ConfigError


def test_defaults_are_embedded():
    config = Config({})
    assert config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert config.STORAGE_BACKEND == "local"
    assert config.TASK_TIMEOUT_SECONDS == 600
    config.validate()


@pytest.mark.parametrize(
    "url", ["postgres://u:p@h:5432/d", "postgresql://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"]
)
def test_heroku_postgres_urls_are_accepted(url):
    assert Config({"DATABASE_URL": url}).SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u:p@h:5432/d"


def test_production_refuses_placeholder_or_short_secret():
    base = {"APP_ENV": "production", "DATABASE_URL": "postgres://u@h/d"}
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config(base).validate()
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config({**base, "SECRET_KEY": "short"}).validate()
    Config({**base, "SECRET_KEY": "x" * 40}).validate()
    assert DEV_SECRET != "x" * 40


def test_production_refuses_sqlite_and_private_urls():
    secret = {"APP_ENV": "production", "SECRET_KEY": "y" * 40}
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Config(secret).validate()
    with pytest.raises(ConfigError, match="ALLOW_PRIVATE_URLS"):
        Config({**secret, "DATABASE_URL": "postgres://h/d", "ALLOW_PRIVATE_URLS": "1"}).validate()


def test_bad_values_fail_fast():
    with pytest.raises(ConfigError, match="TASK_TIMEOUT_SECONDS"):
        Config({"TASK_TIMEOUT_SECONDS": "ten"})
    with pytest.raises(ConfigError, match="S3_PRESIGN"):
        Config({"S3_PRESIGN": "maybe"})
    with pytest.raises(ConfigError, match="STORAGE_BACKEND"):
        Config({"STORAGE_BACKEND": "ftp"}).validate()


def test_job_overrides_parse():
    assert Config({"JOB_OVERRIDES": "basic_clean=a.b,model_pose12=c.d"}).JOB_OVERRIDES == {
        "basic_clean": "a.b",
        "model_pose12": "c.d",
    }


def test_new_password_hashes_use_owasp_rounds_by_default():
    assert Config({}).PASSWORD_HASH_ROUNDS == 600_000


def test_without_a_secret_development_generates_one_and_keeps_it(tmp_path, caplog):
    env = {"INSTANCE_PATH": str(tmp_path)}

    with caplog.at_level(logging.WARNING, logger="shared.config"):
        first = Config(env)
    second = Config(env)

    assert first.SECRET_KEY != DEV_SECRET and len(first.SECRET_KEY) == 64
    assert second.SECRET_KEY == first.SECRET_KEY
    assert first.JWT_SECRET_KEY == first.STORAGE_SIGNING_SECRET == first.SECRET_KEY
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert f"generated a random secret and saved it in {tmp_path / 'secret_key'}" in caplog.text
    assert Config({"INSTANCE_PATH": str(tmp_path / "other")}).SECRET_KEY != first.SECRET_KEY
    assert Config({**env, "SECRET_KEY": "z" * 40}).SECRET_KEY == "z" * 40


def test_production_never_generates_a_secret(tmp_path):
    config = Config(
        {"APP_ENV": "production", "DATABASE_URL": "postgres://h/d", "INSTANCE_PATH": str(tmp_path)}
    )
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        config.validate()
    assert not (tmp_path / "secret_key").exists()
