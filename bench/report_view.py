"""Leaderboard page view: reading the stored report vs building it (what every page view
did before the report was stored), in the same run, on a demo-sized study.

Prints medians over repeated views and their ratio. Uses a throwaway SQLite database.
Run: .venv/bin/python bench/report_view.py [--raters 24]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["VERDICT_VAR_DIR"] = tempfile.mkdtemp(prefix="verdict-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from analysis.reports import ReportOptions, build_report  # noqa: E402
from analysis.simulated import add_simulated_votes  # noqa: E402
from studies.models import Vote  # noqa: E402
from tests.factories import make_live_study  # noqa: E402

REPEATS = 7


def _median_ms(fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raters", type=int, default=24, help="simulated raters (demo: 24)")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    settings.ALLOWED_HOSTS.append("testserver")
    study = make_live_study(systems=4, prompts=12, criteria=2, comparisons_per_session=15)
    names = list(study.systems.order_by("pk").values_list("name", flat=True))
    add_simulated_votes(
        study=study,
        strengths=dict(zip(names, [1.2, 0.5, -0.4, -1.3], strict=True)),
        n_raters=args.raters,
        careless_share=0.1,
        seed=1,
    )
    options = ReportOptions(criterion=study.criteria.order_by("order", "pk")[0].key)
    build_ms = _median_ms(lambda: build_report(study=study, options=options))
    user = get_user_model().objects.create_superuser("bench", "bench@example.org", "x")
    client = Client()
    client.force_login(user)
    url = f"/analysis/studies/{study.slug}/leaderboard"

    def view() -> None:
        assert client.get(url).status_code == 200

    view_ms = _median_ms(view)
    votes = Vote.objects.count()
    print(f"study: {votes} votes, {args.raters} raters, 4 systems, 1000 bootstrap replicates")
    print("| what | median ms |")
    print("| --- | --- |")
    print(f"| page view reading the stored report | {view_ms:.1f} |")
    print(f"| building the report (each page view before) | {build_ms:.1f} |")
    print(f"build / view: {build_ms / view_ms:.1f}x")


if __name__ == "__main__":
    main()
