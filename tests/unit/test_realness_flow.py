"""Real-or-generated studies on the rater side: launch, serving (studies.realness),
answers, feedback and attention checks, through the same rater API as pairwise studies."""

import itertools
import re
import uuid
from collections import Counter
from typing import Any

import pytest
from django.test import Client

from studies.exceptions import StudyNotReady
from studies.lifecycle import launch_problems, launch_study
from studies.models import (
    Answer,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Comparison,
    Rater,
    RaterOutcome,
    Study,
    System,
)
from tests.factories import (
    answer_pairs,
    make_judging_rater,
    make_ready_study,
    make_realness_study,
    rater_api,
    start_rater,
)

pytestmark = pytest.mark.django_db


def _live(**overrides: Any) -> Study:
    overrides.setdefault("practice_comparisons", 0)
    overrides.setdefault("attention_check_rate", 0)
    return launch_study(study=make_realness_study(**overrides))


def _truth(row: Assignment) -> str:
    return Answer.REAL if row.left_asset.system.is_real else Answer.GENERATED


def test_launch_needs_a_real_image_set_and_builds_no_comparisons() -> None:
    study = make_ready_study(study_type="realness", practice_comparisons=0)
    problems = launch_problems(study=study)
    assert any("no real images" in p for p in problems), problems
    with pytest.raises(StudyNotReady, match="no real images"):
        launch_study(study=study)
    ready = make_realness_study(practice_comparisons=0)
    assert launch_problems(study=ready) == []
    launch_study(study=ready)
    assert not Comparison.objects.filter(study=ready).exists()
    # The real set's name is not a system name raters must not see.
    assert System.objects.get(study=ready, is_real=True).name == "Real photographs"


def test_a_session_mixes_real_images_at_the_share_without_repeats_and_balances_systems() -> None:
    study = _live(comparisons_per_session=10, real_share=0.4, systems=2, prompts=6)
    raters = [make_judging_rater(study) for _ in range(4)]
    for rater in raters:
        assert answer_pairs(rater, answer=_truth) == 10
    rows = list(
        Assignment.objects.filter(study=study, kind=AssignmentKind.JUDGMENT)
        .select_related("left_asset__system")
        .order_by("pk")
    )
    assert len(rows) == 40
    for rater in raters:
        mine = [row for row in rows if row.rater_id == rater.pk]
        assert sum(row.left_asset.system.is_real for row in mine) == 4  # 0.4 × 10, exactly
        assert len({row.left_asset_id for row in mine}) == 10  # never the same image twice
        assert all(row.left_asset_id == row.right_asset_id for row in mine)
        assert all(row.expected_answer == _truth(row) for row in mine)
        prompts = [row.prompt_id for row in mine]
        assert all(a != b for a, b in itertools.pairwise(prompts)), prompts
        # The real images do not all sit at the same positions for every rater.
    positions = {
        tuple(
            i
            for i, row in enumerate(r for r in rows if r.rater_id == rater.pk)
            if row.left_asset.system.is_real
        )
        for rater in raters
    }
    assert len(positions) > 1
    generated = Counter(
        row.left_asset.system_id for row in rows if not row.left_asset.system.is_real
    )
    assert max(generated.values()) - min(generated.values()) <= 1, generated
    # Images within a system: least judged first, as far as the rater's own history (no
    # repeats, no prompt twice in a row) allows.
    per_image = Counter(row.left_asset_id for row in rows if not row.left_asset.system.is_real)
    assert max(per_image.values()) - min(per_image.values()) <= 2, per_image


def test_the_rater_api_offers_one_image_and_takes_real_or_generated_only() -> None:
    study = _live(exposure_ms=400)
    client = Client()
    start_rater(client, study)
    session = rater_api(client, study, "session", {}).json()
    screen = session["comparisons"][0]
    assert screen["single"] is True and screen["exposure_ms"] == 400
    assert screen["left"]["url"] == screen["right"]["url"]
    text = str(session)
    for name in System.objects.filter(study=study).values_list("name", flat=True):
        assert name not in text
    wrong = rater_api(
        client,
        study,
        "votes",
        {
            "assignment": screen["id"],
            "answer": "left",
            "response_ms": 900,
            "client_id": str(uuid.uuid4()),
        },
    )
    assert wrong.status_code == 400, wrong.content
    assert "not an answer this study offers" in wrong.json()["detail"]
    ok = rater_api(
        client,
        study,
        "votes",
        {
            "assignment": screen["id"],
            "answer": "real",
            "response_ms": 900,
            "client_id": str(uuid.uuid4()),
        },
    )
    assert ok.status_code == 201, ok.content
    row = Assignment.objects.get(token=screen["id"])
    assert row.status == AssignmentStatus.ANSWERED and row.exposure_ms == 400
    assert row.votes.get().answer == "real"


def test_a_pairwise_study_refuses_real_or_generated_answers() -> None:
    from tests.factories import make_live_study

    study = make_live_study(practice_comparisons=0, attention_check_rate=0)
    client = Client()
    start_rater(client, study)
    screen = rater_api(client, study, "session", {}).json()["comparisons"][0]
    assert screen["single"] is False
    response = rater_api(
        client,
        study,
        "votes",
        {
            "assignment": screen["id"],
            "answer": "real",
            "response_ms": 900,
            "client_id": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 400


def test_practice_images_come_with_their_truth() -> None:
    study = _live(practice_comparisons=2)
    client = Client()
    start_rater(client, study)
    truths = []
    for _ in range(2):
        screen = rater_api(client, study, "session", {}).json()["comparisons"][0]
        assert screen["practice"] is True
        row = Assignment.objects.select_related("left_asset__system").get(token=screen["id"])
        truth = _truth(row)
        truths.append(truth)
        body = rater_api(
            client,
            study,
            "votes",
            {
                "assignment": screen["id"],
                "answer": "generated",
                "response_ms": 900,
                "client_id": str(uuid.uuid4()),
            },
        ).json()
        feedback = body["feedback"]
        assert feedback["expected"] == truth
        assert feedback["correct"] is (truth == "generated")
        word = "one of the study's real images" if truth == "real" else "generated by a model"
        assert word in feedback["explanation"]
    assert sorted(truths) == ["generated", "real"]  # one of each


def test_attention_checks_are_damaged_copies_and_failing_them_ends_the_session() -> None:
    study = _live(
        comparisons_per_session=8, attention_check_rate=0.2, max_failed_attention_checks=0
    )
    rater = make_judging_rater(study)
    answer_pairs(
        rater, answer=lambda row: "real" if row.kind == AssignmentKind.ATTENTION else _truth(row)
    )
    checks = list(Assignment.objects.filter(rater=rater, kind=AssignmentKind.ATTENTION))
    assert checks, "no attention check was served"
    assert all(row.expected_answer == "generated" for row in checks)
    assert all(
        row.left_asset.kind == "attention" and not row.left_asset.system.is_real for row in checks
    )
    assert Rater.objects.get(pk=rater.pk).outcome == RaterOutcome.FAILED_CHECKS

    careful = make_judging_rater(study)
    answer_pairs(careful, answer=_truth)
    assert Rater.objects.get(pk=careful.pk).outcome != RaterOutcome.FAILED_CHECKS
    main = Assignment.objects.filter(rater=careful, kind__in=["judgment", "attention"])
    assert main.count() == 10  # 8 images and 2 checks


def test_the_session_ends_when_the_rater_has_seen_every_image() -> None:
    study = _live(comparisons_per_session=50, systems=1, prompts=2, real_images=2)
    rater = make_judging_rater(study)
    assert answer_pairs(rater, answer=_truth) == 4
    rater.refresh_from_db()
    assert rater.judging_done_at is not None


def test_simulated_raters_judge_each_set_as_real_as_its_strength() -> None:
    from analysis.simulated import add_simulated_votes

    study = _live(comparisons_per_session=12, systems=2, prompts=6, real_images=12)
    real_set, plain, fake = System.objects.filter(study=study).order_by("-is_real", "pk")
    run = add_simulated_votes(
        study=study,
        strengths={real_set.name: 3.0, plain.name: 0.0, fake.name: -3.0},
        n_raters=20,
        careless_share=0.0,
        item_sd=0.0,
        noise=0.0,
        seed=4,
    )
    assert run.raters == 20 and run.votes == 240
    said_real: dict[int, list[bool]] = {}
    judged = Assignment.objects.filter(study=study, kind=AssignmentKind.JUDGMENT)
    for row in judged.select_related("left_asset"):
        said_real.setdefault(row.left_asset.system_id, []).append(
            row.votes.get(is_current=True).answer == "real"
        )
    share = {pk: sum(v) / len(v) for pk, v in said_real.items()}
    assert share[real_set.pk] > 0.85  # logit 3: 0.95
    assert 0.3 < share[plain.pk] < 0.7  # a coin
    assert share[fake.pk] < 0.15


def test_the_researchers_preview_tours_a_real_or_generated_study_and_stores_nothing(
    admin_client: Client,
) -> None:
    from django.urls import reverse

    from studies import preview

    study = make_realness_study(practice_comparisons=1, attention_check_rate=0.1, exposure_ms=300)
    screens = [preview.preview_screen(study, n) for n in range(preview.SCREENS)]
    kinds = [screen[0].kind for screen in screens if screen]
    assert kinds[0] == "practice" and kinds[preview.CHECK_AT] == "attention"
    assert all(screen[0].left_asset_id == screen[0].right_asset_id for screen in screens if screen)
    truths = {screen[0].expected_answer for screen in screens if screen}
    assert truths == {"real", "generated"}
    page = admin_client.get(reverse("admin:studies_study_preview", args=[study.pk]))
    assert page.status_code == 200 and b"Report a problem with this image" in page.content
    first = preview.preview_session(study, 0)["comparisons"][0]
    assert first["single"] and first["exposure_ms"] == 300
    votes = reverse("admin:studies_study_preview_api", args=[study.pk, "votes"])
    answered = admin_client.post(
        votes, {"assignment": first["id"], "answer": "real"}, content_type="application/json"
    )
    assert answered.status_code == 201
    feedback = answered.json()["feedback"]
    first_screen = screens[0]
    assert first_screen is not None
    assert feedback["expected"] == first_screen[0].expected_answer
    assert feedback["explanation"] in (
        "This image is real: one of the study's real images.",
        "This image was generated by a model.",
    )
    refused = admin_client.post(
        votes, {"assignment": first["id"], "answer": "left"}, content_type="application/json"
    )
    assert refused.status_code == 400
    assert not Assignment.objects.filter(study=study).exists()


def test_every_researcher_page_of_a_judged_real_or_generated_study_answers(
    admin_client: Client,
) -> None:
    """The admin's study pages (change page, progress, raters, plan, metrics, study file,
    import, exports) on a live real-or-generated study with judgments: never a 500."""
    from django.urls import reverse

    from analysis.simulated import add_simulated_votes

    study = _live(comparisons_per_session=6, attention_check_rate=0.2, practice_comparisons=1)
    add_simulated_votes(study=study, strengths={}, n_raters=5, seed=1)
    pages = [
        reverse("admin:studies_study_change", args=[study.pk]),
        reverse("admin:studies_study_progress", args=[study.pk]),
        reverse("admin:studies_study_raters", args=[study.pk]),
        reverse("admin:studies_study_plan", args=[study.pk]),
        reverse("admin:studies_study_metrics", args=[study.pk]),
        reverse("admin:studies_study_file", args=[study.pk]),
        reverse("admin:studies_study_import_media", args=[study.pk]),
        reverse("admin:studies_study_preview", args=[study.pk]),
        reverse("admin:studies_vote_changelist"),
        reverse("admin:studies_rater_changelist"),
        reverse("admin:studies_asset_changelist"),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    plan = admin_client.get(reverse("admin:studies_study_plan", args=[study.pk])).content
    assert b"pairwise study" in plan and b"real-or-generated study" in plan
    file_text = admin_client.get(reverse("admin:studies_study_file", args=[study.pk])).content
    assert b"study_type: realness" in file_text and b"is_real: true" in file_text
    exported = admin_client.post(
        reverse("admin:studies_study_changelist"),
        {"action": "export_votes", "_selected_action": [study.pk]},
    )
    assert exported.status_code == 200


def test_the_votes_export_of_a_real_or_generated_study() -> None:
    import csv
    import io

    from studies.exports import iter_votes_csv

    study = _live(comparisons_per_session=4, attention_check_rate=0.2, practice_comparisons=1)
    rater = make_judging_rater(study)
    answer_pairs(rater, answer=lambda row: "generated")
    rows = list(csv.DictReader(io.StringIO("".join(iter_votes_csv(study=study)))))
    by_kind = Counter(row["kind"] for row in rows)
    assert by_kind["judgment"] == 4 and by_kind["practice"] == 1 and by_kind["attention"] == 1
    for row in rows:
        assert row["left_system"] == row["right_system"] and row["answer"] == "generated"
        assert row["winner"] == ""
        truth = "real" if row["left_system"] == "Real photographs" else "generated"
        assert row["expected_answer"] == truth
        if row["kind"] == "judgment":
            assert row["passed"] == ""
        else:  # practice and the check: right when the truth is generated
            assert row["passed"] == str(int(truth == "generated"))


def test_the_study_page_counts_judgments_and_leaves_out_the_pairwise_tools(
    admin_client: Client,
) -> None:
    from django.urls import reverse

    study = _live(comparisons_per_session=4, votes_per_comparison=2)
    rater = make_judging_rater(study)
    answer_pairs(rater, answer=_truth)
    counted = Study.objects.with_progress().get(pk=study.pk)
    assert counted.n_votes == 4  # type: ignore[attr-defined]
    assert counted.vote_target == 12 * 2  # type: ignore[attr-defined]  # 6 outputs and 6 real images, 2 judgments each
    page = admin_client.get(reverse("admin:studies_study_change", args=[study.pk]))
    html = page.content.decode()
    assert "4 / 24" in html
    assert reverse("leaderboard", args=[study.slug]) not in html
    assert reverse("admin:studies_study_plan", args=[study.pk]) not in html
    assert "Stopping signal" not in html
    assert 'value="real"' not in html  # the pairwise answers' checkboxes only


def test_a_flagged_or_failed_image_is_replaced_and_the_session_still_completes() -> None:
    from studies.models import Asset, Flag

    study = _live(comparisons_per_session=4)
    client = Client()
    start_rater(client, study)
    screen = rater_api(client, study, "session", {}).json()["comparisons"][0]
    flagged = rater_api(client, study, "flags", {"assignment": screen["id"], "reason": "broken"})
    assert flagged.status_code == 201, flagged.content
    row = Assignment.objects.get(token=screen["id"])
    assert row.status == AssignmentStatus.FLAGGED
    assert Flag.objects.filter(assignment=row).exists()
    assert Asset.objects.get(pk=row.left_asset_id).withheld  # pending a researcher's review
    nxt = flagged.json()["session"]["comparisons"][0]
    assert nxt["id"] != screen["id"]
    failed = rater_api(
        client, study, "load-failures", {"assignment": nxt["id"], "detail": "decode error"}
    )
    assert failed.status_code == 201, failed.content
    assert Assignment.objects.get(token=nxt["id"]).status == AssignmentStatus.REPLACED
    answered = 0
    session = failed.json()["session"]
    while not session["finished"]:
        current = session["comparisons"][0]
        body = {
            "assignment": current["id"],
            "answer": "generated",
            "response_ms": 800,
            "client_id": str(uuid.uuid4()),
        }
        response = rater_api(client, study, "votes", body)
        assert response.status_code == 201, response.content
        session = response.json()["session"]
        answered += 1
    assert answered == 4  # the flagged and the failed images did not count
    shown = Assignment.objects.filter(study=study, kind=AssignmentKind.JUDGMENT)
    assert shown.values("left_asset").distinct().count() == shown.count() == 6


def test_serving_an_image_reads_no_media_once_the_pool_is_cached() -> None:
    """The pool comes from studies.content's cache (keyed by the content version read with
    the rater): a vote that serves the next image does not read the pool again (a prompt's
    media are read once per process, as for pairs)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from studies.models import Asset

    study = _live(comparisons_per_session=6, attention_check_rate=0.2)
    client = Client()
    start_rater(client, study)
    session = rater_api(client, study, "session", {}).json()
    table = Asset._meta.db_table
    for _ in range(4):
        screen = session["comparisons"][0]
        body = {
            "assignment": screen["id"],
            "answer": "generated",
            "response_ms": 800,
            "client_id": str(uuid.uuid4()),
        }
        with CaptureQueriesContext(connection) as queries:
            response = rater_api(client, study, "votes", body)
        assert response.status_code == 201
        session = response.json()["session"]
        # Any read of the study's media not confined to one prompt is the pool.
        pool_reads = [
            q["sql"]
            for q in queries
            if f'FROM "{table}"' in q["sql"]
            and not re.search(rf'"{table}"\."prompt_id" = \d', q["sql"])
        ]
        assert not pool_reads, pool_reads
