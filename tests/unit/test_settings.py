import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import env_bool, env_int, parse_database_url

ROOT = Path(__file__).resolve().parents[2]


def test_unset_database_url_means_sqlite_file(tmp_path: Path) -> None:
    config = parse_database_url("", sqlite_default=tmp_path / "db.sqlite3")
    assert config == {"ENGINE": "django.db.backends.sqlite3", "NAME": tmp_path / "db.sqlite3"}


def test_postgres_url_is_split_into_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONN_MAX_AGE", raising=False)
    config = parse_database_url(
        "postgres://ver%40dict:p%3Ass@db.example:6543/verdict_prod?sslmode=require",
        sqlite_default=tmp_path / "x",
    )
    assert config["ENGINE"] == "config.postgres"  # Django's, with a cheaper health check
    assert (config["USER"], config["PASSWORD"]) == ("ver@dict", "p:ss")
    assert (config["HOST"], config["PORT"], config["NAME"]) == (
        "db.example",
        "6543",
        "verdict_prod",
    )
    # The rater path's statements are prepared unless the URL turns that off.
    assert config["OPTIONS"] == {"sslmode": "require", "prepare_threshold": 5}
    assert config["CONN_MAX_AGE"] == 600


@pytest.mark.parametrize(
    ("query", "expected"), [("prepare_threshold=off", None), ("prepare_threshold=0", 0)]
)
def test_prepared_statements_can_be_turned_off_for_a_pooler(
    query: str, expected: int | None, tmp_path: Path
) -> None:
    config = parse_database_url(f"postgres://db/verdict?{query}", sqlite_default=tmp_path)
    assert config["OPTIONS"] == {"prepare_threshold": expected}


def test_a_bad_prepare_threshold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="a number or off"):
        parse_database_url("postgres://db/verdict?prepare_threshold=often", sqlite_default=tmp_path)


def test_sqlite_url_keeps_its_path(tmp_path: Path) -> None:
    assert parse_database_url("sqlite:////abs/v.db", sqlite_default=tmp_path)["NAME"] == "/abs/v.db"
    assert parse_database_url("sqlite:///rel/v.db", sqlite_default=tmp_path)["NAME"] == "rel/v.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/verdict", "not supported"),
        ("postgres://localhost/", "needs a database name"),
        ("postgres://localhost:notaport/db", "bad port"),
        ("sqlite:///", "needs a file path"),
    ],
)
def test_bad_database_urls_are_refused_with_a_reason(
    url: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_database_url(url, sqlite_default=tmp_path)


def test_env_bool_reads_common_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expected in [("1", True), ("yes", True), ("On", True), ("0", False), ("false", False)]:
        monkeypatch.setenv("X_FLAG", raw)
        assert env_bool("X_FLAG", not expected) is expected
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True


def test_env_bool_refuses_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
        env_bool("X_FLAG", False)


def test_env_int_checks_type_and_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_NUM", "12")
    assert env_int("X_NUM", 1) == 12
    monkeypatch.setenv("X_NUM", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "-1")
    with pytest.raises(ImproperlyConfigured, match="below the minimum"):
        env_int("X_NUM", 1, minimum=0)


def _start_django(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(env_overrides)
    code = "import django; django.setup(); print('started')"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_debug_off_refuses_the_default_secret_key() -> None:
    result = _start_django({"DEBUG": "0", "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode != 0
    assert "SECRET_KEY is the built-in development key" in result.stderr


def test_debug_off_starts_with_a_real_secret_key() -> None:
    result = _start_django(
        {"DEBUG": "0", "SECRET_KEY": "x" * 50, "DJANGO_SETTINGS_MODULE": "config.settings"}
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_settings_switch_broker_and_database_from_the_environment() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    )
    env = dict(os.environ)
    env.update(
        DATABASE_URL="postgres://u@h:5432/d",
        CELERY_BROKER_URL="redis://h:6379/0",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.stdout.split() == ["config.postgres", "redis://h:6379/0"], out.stderr
    env.pop("DATABASE_URL")
    env.pop("CELERY_BROKER_URL")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.stdout.split() == ["django.db.backends.sqlite3", "filesystem://localhost//"], (
        out.stderr
    )


def test_production_settings_pass_check_deploy(tmp_path: Path) -> None:
    """The compose file's settings behind a TLS proxy: no deployment warning at all."""
    env = dict(os.environ)
    env.update(
        DEBUG="0",
        SECRET_KEY="k" * 16 + "-production-key-" + "z" * 30,
        SECURE_PROXY="1",
        DJANGO_SETTINGS_MODULE="config.settings",
        VERDICT_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
