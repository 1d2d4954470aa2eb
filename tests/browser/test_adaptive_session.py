"""An adaptive study on the demo's data, judged in headless Debian Chromium: the votes
schedule the background refresh of the pair priorities, the refreshed strides steer the
serving, and the session keeps its guarantees."""

from typing import Any

import pytest
from playwright.sync_api import Browser

from analysis import tasks as analysis_tasks
from analysis.selection import refresh_strides
from analysis.simulated import add_simulated_votes
from generation import demo, jobs
from studies import lifecycle
from studies.models import Assignment, AssignmentStatus, Comparison, Rater, RaterSource, Vote
from tests.browser.flow import enter_by_prolific_link

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ENABLED = "#answers:not(.waiting) button[data-answer=left]:enabled"
# The demo's own strengths (scripts/demo.sh).
STRENGTHS = {"Pristine": 1.2, "Soft focus": 0.5, "Grainy": -0.4, "Off-prompt": -1.3}


def test_an_adaptive_study_on_the_demo_data_runs_end_to_end_in_the_browser(
    live_server: Any, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = demo.seed_demo_study(generate=False).study
    study.pair_selection = "adaptive"
    study.comparisons_per_session = 8
    study.practice_comparisons = 0
    study.attention_check_rate = 0
    study.min_viewing_ms = 300
    study.save()
    job = jobs.start_generation(study=study)
    for item_id in job.items.values_list("pk", flat=True):
        jobs.generate_asset(item_id=item_id)
    study.refresh_from_db()
    study = lifecycle.launch_study(study=study)
    add_simulated_votes(study=study, strengths=STRENGTHS, n_raters=12, careless_share=0, seed=5)
    refresh_strides(study=study)
    strides = set(Comparison.objects.filter(study=study).values_list("stride", flat=True))
    assert len(strides) > 1, strides  # the votes so far tell the pairs apart
    sent: list[dict[str, int]] = []
    monkeypatch.setattr(
        analysis_tasks.refresh_selection,
        "apply_async",
        lambda kwargs, countdown: sent.append(kwargs),
    )

    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    enter_by_prolific_link(page, live_server.url, study)
    for n in range(1, 9):
        page.wait_for_selector(ENABLED, timeout=15_000)
        assert page.inner_text("#progress-label") == f"Pair {n} of 8"
        page.keyboard.press("1" if n % 2 else "2")
        if n < 8:
            page.wait_for_selector("#status:not(:has-text('Saving'))", timeout=15_000)
    page.wait_for_url("**/about-you", timeout=15_000)
    assert not errors, errors

    rater = Rater.objects.get(study=study, source=RaterSource.PROLIFIC)
    pairs = Assignment.objects.filter(rater=rater, kind="comparison")
    assert pairs.count() == 8 and not pairs.filter(status=AssignmentStatus.SERVED).exists()
    assert pairs.values("comparison").distinct().count() == 8  # no repeats
    votes = Vote.objects.filter(assignment__rater=rater, is_current=True)
    assert [v.answer for v in votes.order_by("pk")] == ["left", "right"] * 4
    # The votes asked for the background refresh (debounced), which the worker runs.
    assert {"study_id": study.pk} in sent
    before = dict(Comparison.objects.filter(study=study).values_list("pk", "stride"))
    analysis_tasks.refresh_selection(study_id=study.pk)
    after = dict(Comparison.objects.filter(study=study).values_list("pk", "stride"))
    assert before.keys() == after.keys() and min(after.values()) == 1.0
    # Sides stay counterbalanced per comparison under adaptive serving.
    for a_left, b_left in Comparison.objects.filter(study=study).values_list(
        "shown_a_left", "shown_b_left"
    ):
        assert abs(a_left - b_left) <= 1
