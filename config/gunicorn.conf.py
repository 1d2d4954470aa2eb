"""Gunicorn settings for the web process: ``gunicorn -c config/gunicorn.conf.py``.

Sync workers, 2 × cores of them: on the vote path a worker blocks on every database round
trip, so one per core leaves the CPU idle, and more than two per core only adds contention
(reference/VOTE-PATH.md: sync × 4 on 2 cores beat × 2, × 8 and gthread). Every value can be
changed from the environment, so Compose and the benchmark share this file.
"""

import os


def _cores() -> int:
    # The CPUs this process may run on (a container's limit), not the host's count.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name}={raw!r} is not a positive integer.")
    return int(raw)


wsgi_app = "config.wsgi:application"
# Loopback unless told otherwise; a container sets GUNICORN_BIND=0.0.0.0:8000.
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
worker_class = "sync"
# WEB_CONCURRENCY is the name gunicorn itself and PaaS hosts use.
workers = _env_int("WEB_CONCURRENCY", 2 * _cores())
timeout = _env_int("GUNICORN_TIMEOUT", 30)
# Gunicorn's control socket defaults to one path per user, which two servers on one host
# (the benchmark's Verdict and its baseline) would fight over; nothing here uses it.
control_socket_disable = True
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
