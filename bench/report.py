"""The agreement report at scale: a study with 1M votes and 20 systems. Times building
the stored report (and, in the same run, the load of the votes it starts with, as the
baseline), then rendering each form from the stored report.

Targets (issue 10, this 2-core machine): build under 10 s, HTML under 1 s.
Uses a throwaway SQLite database; filling it takes about 7 minutes. ``--var DIR`` keeps
it in DIR and reuses a study filled there before (a second run times only the report).
Run: .venv/bin/python bench/report.py [--votes 1000000] [--systems 20] [--var DIR]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
_VAR = sys.argv[sys.argv.index("--var") + 1] if "--var" in sys.argv else None
os.environ["VERDICT_VAR_DIR"] = _VAR or tempfile.mkdtemp(prefix="verdict-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from analysis.loaders import study_votes  # noqa: E402
from analysis.reports import ReportOptions, build_report, read_report  # noqa: E402
from reports.document import Bounds  # noqa: E402
from reports.render import render_html, render_pdf, render_zip  # noqa: E402
from studies.models import (  # noqa: E402
    Answer,
    Asset,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Rater,
    RaterSource,
    Study,
    Vote,
)
from tests.factories import make_ready_study  # noqa: E402

BATCH = 20_000


def _fill(n_votes: int, n_systems: int, n_raters: int, seed: int = 1):  # type: ignore[no-untyped-def]
    """A launched-looking study: votes drawn from a Bradley–Terry truth with ties."""
    study = make_ready_study(systems=n_systems, prompts=40, criteria=1, status="live")
    criterion = study.criteria.get()
    outputs = list(Asset.objects.outputs().filter(system__study=study).order_by("pk"))
    for k, asset in enumerate(outputs):
        asset.generation_meta = {"seconds": 1.0 + k % 7, "gpu_seconds": 0.9 + k % 7}
    Asset.objects.bulk_update(outputs, ["generation_meta"])
    by_prompt: dict[int, list[Asset]] = {}
    for asset in outputs:
        by_prompt.setdefault(asset.prompt_id, []).append(asset)
    prompts = sorted(by_prompt)
    raters = Rater.objects.bulk_create(
        [Rater(study=study, source=RaterSource.SIMULATED) for _ in range(n_raters)]
    )
    rng = np.random.default_rng(seed)
    strength = np.linspace(1.5, -1.5, n_systems)
    answers = [Answer.LEFT, Answer.RIGHT, Answer.TIE, Answer.BOTH_BAD]
    made = 0
    while made < n_votes:
        size = min(BATCH, n_votes - made)
        prompt = rng.integers(0, len(prompts), size)
        pairs = np.array([rng.choice(n_systems, 2, replace=False) for _ in range(size)])
        diff = strength[pairs[:, 0]] - strength[pairs[:, 1]]
        p_left = 0.85 / (1 + np.exp(-diff))
        draw = rng.uniform(size=size)
        outcome = np.where(draw < p_left, 0, np.where(draw < 0.85, 1, np.where(draw < 0.95, 2, 3)))
        rater = rng.integers(0, n_raters, size)
        with transaction.atomic():
            assignments = Assignment.objects.bulk_create(
                [
                    Assignment(
                        study=study, rater=raters[rater[i]], kind=AssignmentKind.COMPARISON,
                        prompt_id=prompts[prompt[i]], criterion=criterion,
                        left_asset=by_prompt[prompts[prompt[i]]][pairs[i, 0]],
                        right_asset=by_prompt[prompts[prompt[i]]][pairs[i, 1]],
                        status=AssignmentStatus.ANSWERED,
                    )
                    for i in range(size)
                ],
                batch_size=5000,
            )  # fmt: skip
            Vote.objects.bulk_create(
                [
                    Vote(
                        assignment=a, answer=answers[outcome[i]], client_id=uuid.uuid4(),
                        response_ms=int(1500 + 100 * (i % 20)),
                    )
                    for i, a in enumerate(assignments)
                ],
                batch_size=5000,
            )  # fmt: skip
        made += size
        print(f"  {made} votes stored", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return study


def _seconds(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--systems", type=int, default=20)
    parser.add_argument("--raters", type=int, default=2000)
    parser.add_argument("--var", help="keep the database in this folder and reuse it")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    study = Study.objects.order_by("pk").last()
    if study is None or Vote.objects.filter(assignment__study=study).count() != args.votes:
        study = _fill(args.votes, args.systems, args.raters)
        print(f"filled in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    options = ReportOptions(criterion=study.criteria.get().key)
    print(f"study: {args.votes} votes, {study.systems.count()} systems, 1000 bootstrap replicates")
    print("| what | seconds | target |")
    print("| --- | --- | --- |", flush=True)
    load_s = _seconds(lambda: study_votes(study=study), 1)
    print(f"| load the votes (baseline, part of the build) | {load_s:.2f} | |", flush=True)
    build_s = _seconds(lambda: build_report(study=study, options=options), 1)
    print(f"| build and store the report | {build_s:.2f} | < 10 |", flush=True)
    state = read_report(study=study, options=options)
    assert state.report is not None and state.analysis is not None, state.report
    report, analysis = state.report, state.analysis

    def html() -> None:
        again = read_report(study=study, options=options)
        assert again.report is not None and again.analysis is not None
        render_html(study=study, report=again.report, analysis=again.analysis, bounds=Bounds(0.01))

    html_s = _seconds(html, 5)
    print(f"| HTML from the stored report (read + render, median of 5) | {html_s:.2f} | < 1 |")
    pdf_s = _seconds(
        lambda: render_pdf(study=study, report=report, analysis=analysis, bounds=Bounds()), 1
    )
    print(f"| PDF | {pdf_s:.2f} | |", flush=True)
    zip_s = _seconds(
        lambda: render_zip(study=study, report=report, analysis=analysis, bounds=Bounds()).close(),
        1,
    )
    print(f"| zip (1M-row votes.csv) | {zip_s:.2f} | |")
    print(f"build / load: {build_s / load_s:.1f}x; build {'met' if build_s < 10 else 'MISSED'}, "
          f"HTML {'met' if html_s < 1 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
