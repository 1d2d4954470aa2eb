"""A pilot launch: a cap on raters, a summary of what it showed, and the pilot's votes kept
with the full launch or discarded (counted nowhere, kept for audit)."""

import csv
import io
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from analysis.core.agreement import krippendorff_alpha
from analysis.core.leaderboard import judgments
from analysis.loaders import study_votes
from analysis.pilot import pilot_summary
from studies import lifecycle
from studies.exceptions import InvalidTransition, StudyNotReady
from studies.exports import iter_votes_csv
from studies.models import (
    Assignment,
    Comparison,
    Rater,
    RaterOutcome,
    Study,
    StudyStatus,
    Vote,
)
from studies.pay import pay_estimate
from studies.tally import Tally
from tests.factories import answer_pairs, make_ready_study, start_rater

pytestmark = pytest.mark.django_db


def _pilot(**overrides: Any) -> Study:
    overrides.setdefault("pilot_raters", 3)
    overrides.setdefault("comparisons_per_session", 4)
    overrides.setdefault("practice_comparisons", 0)
    overrides.setdefault("attention_check_rate", 0.25)
    study = make_ready_study(systems=3, prompts=2, **overrides)
    return lifecycle.launch_pilot(study=study)


def _raters_in_pilot(study: Study, n: int) -> list[Rater]:
    """n raters through the real entry pages (each its own browser), judging done."""
    made = []
    for _ in range(n):
        rater = start_rater(Client(), study)
        answer_pairs(rater)
        made.append(rater)
    return made


def _counters_match_assignments(study: Study) -> None:
    """Each comparison's counters are the pairs that count (open or answered) per side."""
    for comparison in Comparison.objects.filter(study=study):
        rows = Assignment.objects.filter(comparison=comparison, status__in=["served", "answered"])
        a_left = sum(r.left_asset.system_id == comparison.system_a_id for r in rows)
        assert (comparison.shown_a_left, comparison.shown_b_left) == (a_left, rows.count() - a_left)


def test_a_pilot_opens_to_its_cap_of_raters_then_says_it_is_full() -> None:
    study = _pilot(pilot_raters=2)
    assert study.status == StudyStatus.PILOT and study.pilot_started_at is not None
    first, second = _raters_in_pilot(study, 2)
    assert first.in_pilot and second.in_pilot
    late = Client()
    page = late.get(f"/r/{study.slug}/", follow=True).content.decode()
    assert "This study is full for now" in page
    assert Rater.objects.filter(study=study).count() == 2
    # A participant who arrived before the last seat went and consents after: turned away
    # at consent, nothing stored.
    study.pilot_raters = 3
    study.save()
    waiting = Client()
    waiting.get(f"/r/{study.slug}/", {"PROLIFIC_PID": "a" * 24})
    start_rater(Client(), study)  # takes the third seat meanwhile
    page = waiting.post(f"/r/{study.slug}/consent", {"decision": "agree"}).content.decode()
    assert "This study is full for now" in page
    assert not Rater.objects.filter(external_id="a" * 24).exists()


def test_a_returning_pilot_rater_resumes_when_the_pilot_is_full() -> None:
    study = _pilot(pilot_raters=1)
    browser = Client()
    pid = "b" * 24
    browser.get(f"/r/{study.slug}/", {"PROLIFIC_PID": pid})
    browser.post(f"/r/{study.slug}/consent", {"decision": "agree"})
    again = Client().get(f"/r/{study.slug}/", {"PROLIFIC_PID": pid}, follow=True)
    assert again.redirect_chain[-1][0].endswith("/instructions")


def test_the_pilot_summary_is_the_pilot_raters_numbers() -> None:
    study = _pilot(pilot_raters=3)
    raters = _raters_in_pilot(study, 3)
    summary = pilot_summary(study=study)
    assert summary is not None and summary.state == "running"
    votes = Vote.objects.filter(
        assignment__rater__in=raters, assignment__kind="comparison", is_current=True
    )
    assert summary.seated == 3 and summary.votes == votes.count() == 12
    assert summary.median_s == pytest.approx(0.9)  # answer_pairs answers in 900 ms
    checks = Vote.objects.filter(assignment__rater__in=raters, assignment__kind="attention")
    assert summary.checks == checks.count() > 0
    assert summary.checks_passed == summary.checks  # answered with the known answers
    # Agreement from the same votes by the analysis core, independently selected.
    table = study_votes(study=study).table
    expected = krippendorff_alpha(*judgments(table), level="nominal")
    assert summary.alpha.defined == expected.defined
    if expected.defined:
        assert summary.alpha.value == pytest.approx(expected.value)
    assert summary.left_share == 1.0  # every comparison answered "left"
    text = " ".join(summary.lines())
    assert "3 raters of 3 took part; 3 done judging." in text
    assert "12 comparison votes. Median time per comparison 0.9 s" in text
    assert "Left chosen in 100% of decisive answers." in text


def test_one_pilot_rater_gets_no_agreement_and_says_why() -> None:
    study = _pilot(pilot_raters=1)
    _raters_in_pilot(study, 1)
    summary = pilot_summary(study=study)
    assert summary is not None and not summary.alpha.defined
    assert "Agreement cannot be given yet:" in " ".join(summary.lines())
    assert np.isnan(summary.alpha.value)


def test_keeping_the_pilot_launches_with_its_votes_and_lifts_the_cap() -> None:
    study = _pilot(pilot_raters=1)
    (pilot_rater,) = _raters_in_pilot(study, 1)
    kept = Vote.objects.filter(assignment__rater=pilot_rater, is_current=True).count()
    lifecycle.launch_study(study=study)
    study.refresh_from_db()
    assert study.status == StudyStatus.LIVE
    later = start_rater(Client(), study)
    assert not later.in_pilot
    answer_pairs(later)
    assert Vote.objects.filter(assignment__rater=pilot_rater, is_current=True).count() == kept
    assert pilot_summary(study=study).state == "kept"  # type: ignore[union-attr]
    _counters_match_assignments(study)


def test_discarding_the_pilot_sets_its_votes_aside_and_gives_its_pairs_back() -> None:
    study = _pilot(pilot_raters=3)
    done = _raters_in_pilot(study, 2)
    judging = start_rater(Client(), study)
    answer_pairs(judging, limit=1)  # mid-session, holding open pairs
    assert Assignment.objects.filter(rater=judging, status="served").exists()
    n_votes = Vote.objects.filter(assignment__rater__in=[*done, judging]).count()

    assert lifecycle.discard_pilot(study=study) == n_votes
    study.refresh_from_db()
    assert study.status == StudyStatus.READY
    assert not Vote.objects.filter(assignment__study=study, is_current=True).exists()
    assert study_votes(study=study).table.n_votes == 0
    assert Study.objects.with_progress().get(pk=study.pk).n_votes == 0  # type: ignore[attr-defined]
    assert not Assignment.objects.filter(study=study, status__in=["served", "answered"]).exists()
    _counters_match_assignments(study)
    assert all(c.shown_a_left == c.shown_b_left == 0 for c in Comparison.objects.all())
    judging.refresh_from_db()
    assert judging.outcome == RaterOutcome.STOPPED
    for rater in [*done, judging]:  # their answered screens left their tallies
        rater.refresh_from_db()
        assert Tally.from_json(rater.tally).answered(["practice", "comparison"]) == 0
    rows = list(csv.DictReader(io.StringIO("".join(iter_votes_csv(study=study)))))
    assert len(rows) == n_votes
    assert {(r["pilot"], r["is_current"]) for r in rows} == {("discarded", "0")}
    summary = pilot_summary(study=study)
    assert summary is not None and summary.state == "discarded"
    assert "were discarded: kept for audit (exports mark them)" in " ".join(summary.lines())

    # The pilot still timed the task: the pay estimate reads its answers.
    study.reward_per_session = Decimal("1.00")
    pay = pay_estimate(study=study)
    assert pay is not None and pay.source == f"the median of {n_votes} real answers"

    # Then the full launch: the design starts from nothing, new raters are served.
    lifecycle.launch_study(study=study)
    later = start_rater(Client(), study)
    assert answer_pairs(later) > 0 and not later.in_pilot
    _counters_match_assignments(study)


def test_a_second_pilot_counts_only_its_own_raters() -> None:
    study = _pilot(pilot_raters=1)
    _raters_in_pilot(study, 1)
    lifecycle.discard_pilot(study=study)
    lifecycle.launch_pilot(study=study)
    (second,) = _raters_in_pilot(study, 1)
    summary = pilot_summary(study=study)
    assert summary is not None and summary.seated == 1 and summary.votes > 0
    assert list(study.pilot_rater_set()) == [second]


def test_pilot_transitions_refuse_what_makes_no_sense() -> None:
    study = make_ready_study(pilot_raters=0)
    with pytest.raises(StudyNotReady, match="set pilot raters to 1 or more"):
        lifecycle.launch_pilot(study=study)
    with pytest.raises(InvalidTransition):
        lifecycle.discard_pilot(study=study)
    live = lifecycle.launch_study(study=make_ready_study())
    with pytest.raises(InvalidTransition):
        lifecycle.launch_pilot(study=live)


def test_the_study_page_runs_the_pilot_and_shows_its_summary(admin_client: Client) -> None:
    study = make_ready_study(pilot_raters=2, comparisons_per_session=3, practice_comparisons=0)
    page_url = reverse("admin:studies_study_change", args=[study.pk])
    button = reverse("admin:studies_study_button", args=[study.pk, "launch_pilot"])
    assert f'action="{button}"' in admin_client.get(page_url).content.decode()
    admin_client.post(button)
    study.refresh_from_db()
    assert study.status == StudyStatus.PILOT
    _raters_in_pilot(study, 2)
    page = admin_client.get(page_url).content.decode()
    assert "Pilot: running" in page and "2 raters of 2 took part; 2 done judging" in page
    assert "Launch, keeping the pilot&#x27;s votes</button>" in page
    discard = reverse("admin:studies_study_button", args=[study.pk, "discard_pilot"])
    response = admin_client.post(discard, follow=True)
    assert "Discarded the pilot of" in response.content.decode()
    assert "Pilot: its votes were discarded" in response.content.decode()
    study.refresh_from_db()
    assert study.status == StudyStatus.READY
    # The raters dashboard still opens: raters whose votes were all set aside.
    raters_page = admin_client.get(reverse("admin:studies_study_raters", args=[study.pk]))
    assert raters_page.status_code == 200
    # The raters dashboard still opens: raters whose votes were all set aside.
    raters_page = admin_client.get(reverse("admin:studies_study_raters", args=[study.pk]))
    assert raters_page.status_code == 200


def test_the_launch_command_starts_a_pilot(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    study = make_ready_study(pilot_raters=4)
    call_command("launch_study", study.slug, "--pilot")
    study.refresh_from_db()
    assert study.status == StudyStatus.PILOT
    assert "piloting with up to 4 raters" in capsys.readouterr().out
    call_command("launch_study", study.slug)
    study.refresh_from_db()
    assert study.status == StudyStatus.LIVE
