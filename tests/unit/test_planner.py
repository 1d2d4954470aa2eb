"""The planner before launch (votes, raters and cost for expected gaps) and the stopping
signal during a study (which adjacent systems are told apart, and how far the others are)."""

import random
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from analysis.reports import ReportOptions, build_report
from analysis.simulated import add_simulated_votes
from studies.models import Assignment, Study
from tests.factories import (
    answer_pairs,
    make_judging_rater,
    make_live_study,
    make_ready_study,
)

pytestmark = pytest.mark.django_db


def _plan(client: Client, study: Study, **params: str):  # type: ignore[no-untyped-def]
    return client.get(reverse("admin:studies_study_plan", args=[study.pk]), params)


def _change_page(client: Client, study: Study) -> str:
    response = client.get(reverse("admin:studies_study_change", args=[study.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_study_page_links_to_the_plan_and_the_form_asks_for_gaps(
    admin_client: Client,
) -> None:
    study = make_ready_study(systems=4)
    assert reverse("admin:studies_study_plan", args=[study.pk]) in _change_page(admin_client, study)
    response = _plan(admin_client, study)
    page = response.content.decode()
    assert response.status_code == 200 and response.context["plan"] is None
    assert "Expected gaps (Elo)" in page and 'name="power"' in page and 'value="0.8"' in page


def test_the_plan_gives_votes_raters_and_cost_for_entered_gaps(admin_client: Client) -> None:
    study = make_ready_study(
        systems=4, comparisons_per_session=20, reward_per_session=Decimal("2.50"), currency="USD"
    )
    response = _plan(admin_client, study, gaps="120, 100, 120", power="0.8", level="0.95")
    assert response.status_code == 200
    plan = response.context["plan"]
    assert plan.votes_needed is not None and plan.votes_needed > 0
    assert plan.raters * 20 >= plan.votes_needed > (plan.raters - 1) * 20
    assert plan.cost == Decimal("2.50") * plan.raters
    page = response.content.decode()
    assert f"<strong>{plan.votes_needed}</strong>" in page
    assert f"<strong>{plan.raters}</strong>" in page and f"{plan.cost} USD" in page
    # The power curve, one column per adjacent pair, reaching the power asked for.
    assert plan.rows()[-1][1] >= 0.8 and all(len(per) == 3 for _, _, per in plan.rows())
    assert "#3–#4" in page


def test_larger_gaps_need_fewer_votes(admin_client: Client) -> None:
    study = make_ready_study(systems=4, reward_per_session=Decimal("2.00"))
    small = _plan(admin_client, study, gaps="40", power="0.8", level="0.95").context["plan"]
    large = _plan(admin_client, study, gaps="150", power="0.8", level="0.95").context["plan"]
    assert large.votes_needed < small.votes_needed and large.raters < small.raters
    assert large.cost < small.cost


def test_criteria_asked_apart_share_a_session(admin_client: Client) -> None:
    one = make_ready_study(systems=3, criteria=1, comparisons_per_session=20)
    two = make_ready_study(systems=3, criteria=2, comparisons_per_session=20)
    both = make_ready_study(systems=3, criteria=2, comparisons_per_session=20)
    both.criteria_on_one_screen = True
    both.save(update_fields=["criteria_on_one_screen"])
    plans = [
        _plan(admin_client, s, gaps="100", power="0.8", level="0.95").context["plan"]
        for s in (one, two, both)
    ]
    assert plans[1].raters > plans[0].raters and plans[2].raters == plans[0].raters


def test_a_study_without_a_reward_is_told_to_set_one(admin_client: Client) -> None:
    study = make_ready_study(systems=3)
    response = _plan(admin_client, study, gaps="100", power="0.8", level="0.95")
    assert response.context["plan"].raters > 0 and response.context["plan"].cost is None
    assert "set a reward per session" in response.content.decode()


@pytest.mark.parametrize(
    ("gaps", "power", "level"),
    [
        ("-20", "0.8", "0.95"),
        ("0", "0.8", "0.95"),
        ("fifty", "0.8", "0.95"),
        ("50, 40", "0.8", "0.95"),  # four systems have three gaps
        ("50", "1.5", "0.95"),
        ("50", "0", "0.95"),
        ("50", "high", "0.95"),
        ("50", "0.8", "95"),
    ],
)
def test_bad_input_is_a_form_error(admin_client: Client, gaps: str, power: str, level: str) -> None:
    study = make_ready_study(systems=4)
    response = _plan(admin_client, study, gaps=gaps, power=power, level=level)
    assert response.status_code == 200 and response.context["plan"] is None
    assert response.context["form"].errors and "errorlist" in response.content.decode()


def test_the_plan_is_for_staff_only(client: Client) -> None:
    study = make_ready_study(systems=3)
    assert _plan(client, study, gaps="100").status_code == 302  # to the admin login
    user = get_user_model().objects.create_user("someone", password="pw")
    client.force_login(user)
    assert _plan(client, study, gaps="100").status_code == 302
    assert "plan" not in (_plan(client, study, gaps="100").context or {})


def _voted_study(strengths: list[float], n_raters: int, seed: int) -> Study:
    study = make_live_study(systems=3, prompts=4, criteria=1, comparisons_per_session=20)
    names = list(study.systems.order_by("pk").values_list("name", flat=True))
    add_simulated_votes(
        study=study,
        strengths=dict(zip(names, strengths, strict=True)),
        n_raters=n_raters,
        careless_share=0.0,
        item_sd=0.0,
        noise=0.0,
        seed=seed,
    )
    return study


def test_the_plan_starts_from_the_votes_so_far(admin_client: Client) -> None:
    study = _voted_study([2.0, 0.0, -2.0], n_raters=6, seed=1)
    build_report(study=study, options=ReportOptions(criterion=study.criteria.get().key))
    response = _plan(admin_client, study)
    gaps = [float(g) for g in response.context["form"]["gaps"].value().split(",")]
    assert len(gaps) == 2 and all(g > 100 for g in gaps)  # 2 units of log-strength: ~350 Elo
    assert "fitted scores" in response.content.decode()


def _answered_study(
    wins: dict[tuple[int, int], float], raters: int, seed: int
) -> tuple[Study, list[str]]:
    """A live study whose raters answer at random, the first system of each pair (by
    index) winning with the given chance (exactly half, rater by rater, at 0.5). Each
    draw is seeded by the rater, the pair and how often that rater has had it, so the
    votes do not depend on the order the pairs are served in (the study's id decides
    that)."""
    study = make_live_study(
        systems=3,
        prompts=6,
        comparisons_per_session=18,
        attention_check_rate=0.0,
        practice_comparisons=0,
    )
    names = list(study.systems.order_by("pk").values_list("name", flat=True))
    seen: dict[tuple[int, int, int], int] = {}

    def answer(pair: Assignment) -> str:
        left = names.index(pair.left_asset.system.name)
        right = names.index(pair.right_asset.system.name)
        key = (min(left, right), max(left, right))
        k = seen[(pair.rater_id, *key)] = seen.get((pair.rater_id, *key), 0) + 1
        rater_no = rater_numbers.setdefault(pair.rater_id, len(rater_numbers))
        draw = random.Random(f"{seed}:{rater_no}:{key}:{k}").random()
        # No gap at all: each rater gives each side every other vote of the pair.
        first_wins = k % 2 == 1 if wins[key] == 0.5 else draw < wins[key]
        return "left" if first_wins == (left < right) else "right"

    rater_numbers: dict[int, int] = {}
    for _ in range(raters):
        answer_pairs(make_judging_rater(study), answer=answer)
    return study, names


def test_the_stopping_signal_separates_a_far_pair_and_counts_votes_for_a_close_one(
    admin_client: Client,
) -> None:
    # names[0] far above the other two; names[1] a little above names[2].
    study, names = _answered_study({(0, 1): 0.9, (0, 2): 0.9, (1, 2): 0.55}, raters=20, seed=4)
    build_report(study=study, options=ReportOptions(criterion=study.criteria.get().key))
    page = _change_page(admin_client, study)
    assert "Stopping signal" in page
    lines = page.replace("</li>", "\n").splitlines()
    far = next(line for line in lines if f"{names[0]} over {names[1]}" in line)
    close = next(line for line in lines if f"{names[1]} over {names[2]}" in line)
    assert "separated" in far and "not yet" not in far
    assert "not yet; about" in close and "more vote" in close
    assert "1 of 2 adjacent pairs separated" in page


def test_a_pair_with_no_gap_is_not_expected_to_separate(admin_client: Client) -> None:
    study, _ = _answered_study({(0, 1): 0.9, (0, 2): 0.9, (1, 2): 0.5}, raters=20, seed=1)
    build_report(study=study, options=ReportOptions(criterion=study.criteria.get().key))
    page = _change_page(admin_client, study)
    assert "not expected to separate at this gap" in page


def test_the_stopping_signal_says_why_there_is_nothing_to_show(admin_client: Client) -> None:
    study = make_live_study(systems=3, prompts=2)
    assert "No votes yet" in _change_page(admin_client, study)
    voted = _voted_study([1.0, 0.0, -1.0], n_raters=2, seed=3)
    assert "no analysis of the votes yet" in _change_page(admin_client, voted)
    draft = make_ready_study(systems=3)
    assert "Stopping signal" not in _change_page(admin_client, draft)


def test_a_settled_criterion_is_no_longer_served_and_the_page_says_so(
    admin_client: Client,
) -> None:
    from analysis.reports import refresh_reports
    from studies.models import Comparison
    from tests.unit.test_admin_setup import _form_data

    study, _ = _answered_study({(0, 1): 0.9, (0, 2): 0.95, (1, 2): 0.9}, raters=20, seed=2)
    criterion = study.criteria.get()
    refresh_reports(study=study)  # stopping is off: nothing changes
    criterion.refresh_from_db()
    assert criterion.settled_at is None
    assert not Comparison.objects.filter(study=study, available=False).exists()

    Study.objects.filter(pk=study.pk).update(stop_when_settled=True)
    study.refresh_from_db()
    refresh_reports(study=study)
    criterion.refresh_from_db()
    votes = Assignment.objects.filter(study=study, status="answered").count()
    assert criterion.settled_at is not None and criterion.settled_votes == votes
    assert not Comparison.objects.filter(study=study, available=True).exists()
    # A new rater gets nothing to judge: the session ends at once, as an exhausted pool.
    assert answer_pairs(make_judging_rater(study)) == 0
    page = _change_page(admin_client, study)
    assert f"{criterion.key}: settled on" in page and f"after {votes} votes" in page
    assert "optional stopping" in page

    # Turning stopping off in the admin serves the criterion again.
    url = reverse("admin:studies_study_change", args=[study.pk])
    data = _form_data(page)
    data.pop("stop_when_settled")
    admin_client.post(url, data, follow=True)
    criterion.refresh_from_db()
    assert criterion.settled_at is None
    assert Comparison.objects.filter(study=study, available=True).exists()


def test_a_close_pair_keeps_its_criterion_served(admin_client: Client) -> None:
    from analysis.reports import refresh_reports

    study, names = _answered_study({(0, 1): 0.9, (0, 2): 0.9, (1, 2): 0.55}, raters=20, seed=4)
    Study.objects.filter(pk=study.pk).update(stop_when_settled=True)
    study.refresh_from_db()
    refresh_reports(study=study)
    criterion = study.criteria.get()
    criterion.refresh_from_db()
    assert criterion.settled_at is None
    page = _change_page(admin_client, study)
    assert f"{criterion.key}: still served:" in page
    assert f"{names[1]} and {names[2]} are not yet apart at 99.9%" in page


def test_media_coming_back_does_not_serve_a_settled_criterion_again() -> None:
    from studies import assignments
    from studies.models import Asset, Comparison

    study = make_live_study(systems=2, prompts=2, criteria=2, stop_when_settled=True)
    first, second = study.criteria.order_by("order")
    assignments.settle_criteria(study=study, votes={first.pk: 40})
    asset = Asset.objects.outputs().filter(system__study=study).first()
    assert asset is not None
    assignments.withhold(study=study, assets=[asset])
    assignments.withhold(study=study, assets=[asset], withheld=False)
    served = Comparison.objects.filter(study=study, available=True)
    assert set(served.values_list("criterion_id", flat=True)) == {second.pk}
    assert assignments.serve_settled_again(study=study) == 1
    assert served.filter(criterion=first).count() == 2
