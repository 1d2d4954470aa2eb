"""Verdict settings, read from the environment.

With nothing set, Verdict runs embedded: SQLite in ``var/`` and a Celery broker kept in
files under ``var/broker`` (kombu's filesystem transport), so ``make demo`` needs no server
while a real ``celery worker`` process still consumes the queue. ``DATABASE_URL`` and
``CELERY_BROKER_URL`` switch to PostgreSQL and Redis. Every variable is listed in README.md.
"""

import math
import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {minimum}.")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ImproperlyConfigured(f"{name}={value} must be a finite number of at least {minimum}.")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _pg_options(options: dict[str, object]) -> dict[str, object]:
    """The connection's options. The rater path's statements (studies.desk_sql) run as
    prepared statements, which Django's psycopg backend turns off unless told: planning
    them on every call cost PostgreSQL more than running them (about 0.8 ms of its CPU a
    vote under bench/load_votes.py). Behind a pooler in transaction mode that cannot keep
    prepared statements, add ``?prepare_threshold=off`` to DATABASE_URL."""
    raw = str(options.get("prepare_threshold", "5")).strip().lower()
    if raw in {"off", "none", ""}:
        options["prepare_threshold"] = None
        return options
    if not raw.isdigit():
        raise ImproperlyConfigured(f"prepare_threshold={raw!r} in DATABASE_URL: a number or off.")
    options["prepare_threshold"] = int(raw)
    return options


def parse_database_url(url: str, *, sqlite_default: Path) -> dict[str, object]:
    """Turn ``postgres://user:pass@host:port/name?opt=v`` or ``sqlite:///path`` into DATABASES."""
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_default}
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as in SQLAlchemy.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ImproperlyConfigured("DATABASE_URL=sqlite:/// needs a file path.")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported; use postgres:// or sqlite:///."
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL needs a database name: postgres://host/NAME.")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"DATABASE_URL has a bad port: {url!r}.") from None
    return {
        # Django's backend with a health check that costs no round trip (config.postgres).
        "ENGINE": "config.postgres",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        "OPTIONS": _pg_options(dict(parse_qsl(parts.query))),
        # Opening a connection per request costs more than a whole vote
        # (reference/VOTE-PATH.md: 199 -> ~1,300 votes/s).
        "CONN_MAX_AGE": env_int("CONN_MAX_AGE", 600, minimum=0),
        "CONN_HEALTH_CHECKS": True,
    }


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VERDICT_VAR_DIR", str(BASE_DIR / "var")))

DEFAULT_SECRET_KEY = "verdict-insecure-development-key-change-me"
SECRET_KEY = env_str("SECRET_KEY", DEFAULT_SECRET_KEY)
# Embedded mode is a developer's machine; production sets DEBUG=0 and a real key.
DEBUG = env_bool("DEBUG", True)
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured(
        "DEBUG is off but SECRET_KEY is the built-in development key. "
        "Set SECRET_KEY to a long random value (python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))')."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Behind a TLS-terminating proxy (docker-compose's web is meant to sit behind one).
SECURE_PROXY = env_bool("SECURE_PROXY", False)
if SECURE_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Plain HTTP through the proxy is sent to HTTPS, and browsers told to stay there; the
    # container's own healthcheck speaks plain HTTP to gunicorn and is left alone.
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    # The hardened defaults `check --deploy` asks for; a site whose subdomains are not all
    # on HTTPS sets SECURE_HSTS_INCLUDE_SUBDOMAINS=0 (README, Environment variables).
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
X_FRAME_OPTIONS = "DENY"
# Rate limits on rater endpoints and admin logins (studies.limits); a load benchmark
# turns them off to measure the bare path.
RATE_LIMITS = env_bool("VERDICT_RATE_LIMITS", True)
# A shared cache makes the limits and the once-a-minute sweeps exact across processes.
if env_str("VERDICT_CACHE_URL", ""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env_str("VERDICT_CACHE_URL", ""),
        }
    }

INSTALLED_APPS = [
    # Django's admin, and then the study admin composed from each app's piece.
    "config.apps.VerdictAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "studies",
    "generation",
    "metrics",
    "analysis",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's, less the rater JSON API (config.middleware.PagesOnly).
    "config.middleware.PageCommon",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.PageAuthentication",
    "config.middleware.PageMessages",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.RaterContentSecurityPolicy",
    "config.middleware.DatabaseUnavailable",
]

ROOT_URLCONF = "config.urls"
# Signed-cookie sessions: the rater's identity is signed with SECRET_KEY and costs no
# database read on the vote path.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": parse_database_url(
        env_str("DATABASE_URL", ""), sqlite_default=VAR_DIR / "verdict.sqlite3"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite cannot create the folder its file lives in.
    Path(str(DATABASES["default"]["NAME"])).parent.mkdir(parents=True, exist_ok=True)
    # A file, not :memory:, so that a worker process started by a test sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web process read while a worker writes; a busy timeout instead of
        # "database is locked" when both write at once.
        "init_command": "PRAGMA journal_mode=WAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("VERDICT_MEDIA_ROOT", str(VAR_DIR / "media")))
# Uploaded import archives are kept outside MEDIA_ROOT: they carry system names.
IMPORT_ROOT = Path(env_str("VERDICT_IMPORT_ROOT", str(VAR_DIR / "imports")))
# Every file goes through the storage API, so S3-compatible storage is a change here
# (django-storages' S3 backend) and nowhere else.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Media are served by Django (with byte ranges) unless a proxy or object store does it.
SERVE_MEDIA = env_bool("VERDICT_SERVE_MEDIA", True)
# Behind nginx: the media view checks the name and nginx sends the bytes from this
# internal location (X-Accel-Redirect); empty: Django streams them itself.
MEDIA_ACCEL_PREFIX = env_str("VERDICT_MEDIA_ACCEL_PREFIX", "")

# Stored analysis reports (analysis/reports.py): after a vote, rebuild once the votes have
# settled for this many seconds (one rebuild per window however many votes arrive).
VERDICT_REPORT_DEBOUNCE = env_int("VERDICT_REPORT_DEBOUNCE", 10, minimum=0)
# Adaptive studies: seconds after a vote before the pairs' strides are fitted again.
VERDICT_SELECTION_DEBOUNCE = env_int("VERDICT_SELECTION_DEBOUNCE", 5, minimum=0)
# Feature extractors' weights (metrics/extractors.py): local paths only, never downloaded.
VERDICT_INCEPTION_WEIGHTS = env_str("VERDICT_INCEPTION_WEIGHTS", "")
# "clean" (clean-fid's default) or "legacy_tensorflow" (the original TF FID's resize).
VERDICT_INCEPTION_RESIZE = env_str("VERDICT_INCEPTION_RESIZE", "clean")
VERDICT_DINOV2_PATH = env_str("VERDICT_DINOV2_PATH", "")
VERDICT_CLIP_PATH = env_str("VERDICT_CLIP_PATH", "")
# The readiness view costs self-hosted systems' recorded GPU-seconds at this price per
# GPU-hour (in the same currency as the systems' hand-entered prices).
VERDICT_GPU_HOUR_PRICE = env_float("VERDICT_GPU_HOUR_PRICE", 2.5, minimum=0.0)
# Leaderboard rows of systems with fewer votes are marked preliminary.
VERDICT_PRELIMINARY_VOTES = env_int("VERDICT_PRELIMINARY_VOTES", 20, minimum=0)

# Media ingest limits (generation/ingest.py).
# An uploaded import archive (a zip of outputs); larger ones go under IMPORT_ROOT by hand.
IMPORT_MAX_BYTES = env_int("VERDICT_IMPORT_MAX_BYTES", 2 * 1024**3, minimum=1)
INGEST_MAX_BYTES = env_int("VERDICT_INGEST_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
# 40 megapixels: well above any generator's output, far below a decompression bomb.
INGEST_MAX_PIXELS = env_int("VERDICT_INGEST_MAX_PIXELS", 40_000_000, minimum=1)
# Longest video clip ingest takes, in seconds (its pixels per frame fall under the above).
INGEST_MAX_VIDEO_SECONDS = env_float("VERDICT_INGEST_MAX_VIDEO_SECONDS", 30.0, minimum=0.1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    # Researcher endpoints by default; rater endpoints open this up one by one.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI schema of the whole API, for staff: GET /api/schema/.
SPECTACULAR_SETTINGS = {
    "TITLE": "Verdict API",
    "DESCRIPTION": "The rater API (a rater's signed session and CSRF) and the staff API.",
    "VERSION": "1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SERVE_INCLUDE_SCHEMA": False,
}

# Celery. The embedded broker keeps messages in files; a real worker process can consume
# them, but unacknowledged messages of a killed worker are lost (Redis keeps them).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    # Broadcast (remote control) needs a real broker.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    # Generation needs the GPU; everything else is light.
    "generation.generate_asset": {"queue": "gpu"},
    "generation.generate_batch": {"queue": "gpu"},
    "metrics.compute_set_metrics": {"queue": "gpu"},
    "metrics.compute_measures": {"queue": "gpu"},
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# One long GPU task at a time per process; do not hoard messages another worker could run.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The PDF renderer and its font subsetter report every font table at INFO.
        "fontTools": {"level": "WARNING"},
        # WeasyPrint warns of every SVG style property its CSS parser does not know.
        "weasyprint": {"level": "ERROR"},
        "matplotlib": {"level": "WARNING"},
    },
}
