"""Settings of the baseline: what VOTE-PATH.md §5 lists, the database from DATABASE_URL."""

import os
from urllib.parse import unquote, urlsplit

_db = urlsplit(
    os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/verdict_bench_baseline")
)

# A throwaway benchmark server on loopback; nothing is signed with it.
SECRET_KEY = os.environ.get("SECRET_KEY", "vote-baseline-bench-only")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["vote_baseline"]
# Empty, as in VOTE-PATH.md (Django's default stack cost it 10-15%).
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "vote_baseline.urls"
WSGI_APPLICATION = "vote_baseline.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_db.path.lstrip("/")),
        "USER": unquote(_db.username or ""),
        "PASSWORD": unquote(_db.password or ""),
        "HOST": _db.hostname or "",
        "PORT": str(_db.port or ""),
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": False,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
