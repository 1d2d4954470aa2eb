"""Setting a study up in the admin: every setting editable and explained, help texts read
as text, answers as checkboxes, the study page's links and buttons from every app, and
one composed study admin."""

import ast
import csv
import html
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from generation.models import GenerationJob
from studies.models import Study, StudyStatus
from tests.factories import make_live_study, make_prompt, make_ready_study, make_study, make_system

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
APPS = ("studies", "generation", "metrics", "analysis", "reports")


def _change_page(client: Client, study: Study) -> str:
    response = client.get(reverse("admin:studies_study_change", args=[study.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    # No template syntax shows through (a {# #} comment is one line only).
    assert not re.search(r"\{# |\{% ", page)
    return page


def test_help_texts_read_as_text_not_markup(admin_client: Client) -> None:
    page = admin_client.get(reverse("admin:studies_study_add")).content.decode()
    assert "/r/&lt;slug&gt;/" in page and "?cc=&lt;code&gt; is appended" in page
    assert "<slug>" not in page and "<code> is appended" not in page
    # Every help text of every model: brackets escaped, so no future one turns into a tag.
    from django.apps import apps

    for app in APPS:
        for model in apps.get_app_config(app).get_models():
            for field in model._meta.get_fields():
                help_text = str(getattr(field, "help_text", ""))
                assert "<" not in help_text, f"{model.__name__}.{field.name}: {help_text}"


def test_every_setting_of_the_design_is_in_the_study_form() -> None:
    model_admin = admin.site.get_model_admin(Study)
    request = RequestFactory().get("/")
    shown: set[str] = {
        str(name) for _, options in model_admin.get_fieldsets(request) for name in options["fields"]
    }
    editable = {
        f.name
        for f in Study._meta.concrete_fields
        if f.editable and not f.auto_created and f.name != "id"
    }
    assert editable <= shown, f"not in the study form: {sorted(editable - shown)}"
    for name in ("public_title", "practice_comparisons", "assignment_timeout_minutes",
                 "ask_questionnaire", "content_warning"):  # fmt: skip
        assert name in shown
    # Each group says what it is for.
    described = [
        o for title, o in model_admin.get_fieldsets(request) if title not in (None, "History")
    ]
    assert all(o.get("description") for o in described)


def test_allowed_answers_are_checkboxes_stored_in_the_raters_order(admin_client: Client) -> None:
    page = admin_client.get(reverse("admin:studies_study_add")).content.decode()
    for value in ("left", "right", "tie", "both_bad"):
        assert f'type="checkbox" name="allowed_answers" value="{value}"' in page
    model_admin = admin.site.get_model_admin(Study)
    request = RequestFactory().get("/")
    form_class = model_admin.get_form(request, None)
    base = {f: getattr(Study(), f) for f in form_class.base_fields if hasattr(Study(), f)}
    base.update(name="Answers", slug="answers", status="draft", modality="image")
    form = form_class(data={**base, "allowed_answers": ["tie", "right", "left"]})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["allowed_answers"] == ["left", "right", "tie"]
    refused = form_class(data={**base, "slug": "answers-2", "allowed_answers": ["left", "tie"]})
    assert not refused.is_valid()
    assert "Left and right must both be offered" in str(refused.errors)


def test_the_study_page_links_every_apps_pages(admin_client: Client) -> None:
    study = make_ready_study(systems=2, prompts=1)
    page = _change_page(admin_client, study)
    for label, url in (
        ("Import prompts", reverse("admin:studies_study_import_prompts", args=[study.pk])),
        ("Import media", reverse("admin:studies_study_import_media", args=[study.pk])),
        ("Metrics", reverse("admin:studies_study_metrics", args=[study.pk])),
        ("Leaderboard", reverse("leaderboard", args=[study.slug])),
        ("Report", reverse("report", args=[study.slug])),
        ("PDF", reverse("report-pdf", args=[study.slug])),
        ("Data zip", reverse("report-zip", args=[study.slug])),
    ):
        assert f'<a href="{url}">{label}</a>' in page


def test_generate_and_launch_are_buttons_on_the_study_page(
    admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    draft = make_study()
    make_system(draft)
    make_prompt(draft)
    generate = reverse("admin:studies_study_button", args=[draft.pk, "generate_media"])
    assert f'action="{generate}"' in _change_page(admin_client, draft)
    assert admin_client.get(generate).status_code == 405  # a GET changes nothing
    assert not GenerationJob.objects.filter(study=draft).exists()
    with django_capture_on_commit_callbacks():
        response = admin_client.post(generate, follow=True)
    assert GenerationJob.objects.filter(study=draft).count() == 1
    assert "Generation job #" in response.content.decode()

    ready = make_ready_study(systems=2, prompts=1)
    launch = reverse("admin:studies_study_button", args=[ready.pk, "launch"])
    assert f'action="{launch}"' in _change_page(admin_client, ready)
    response = admin_client.post(launch, follow=True)
    ready.refresh_from_db()
    assert ready.status == StudyStatus.LIVE and "Launched" in response.content.decode()
    page = _change_page(admin_client, ready)
    assert ">Pause</button>" in page and ">Launch</button>" not in page
    assert ">Generate media</button>" not in page  # not while raters see the media
    # A refusal is a message, not an error page.
    not_ready = make_study()
    response = admin_client.post(
        reverse("admin:studies_study_button", args=[not_ready.pk, "launch"]), follow=True
    )
    not_ready.refresh_from_db()
    assert response.status_code == 200 and not_ready.status == StudyStatus.DRAFT
    assert f"Cannot launch {not_ready.name!r}" in response.content.decode().replace("&#x27;", "'")
    # Only the page's own buttons run: not Django's bulk delete, not Launch on a live study.
    for name in ("delete_selected", "launch", "anything"):
        unknown = reverse("admin:studies_study_button", args=[ready.pk, name])
        assert admin_client.post(unknown).status_code == 404
    assert Study.objects.filter(pk=ready.pk).exists()


def test_the_study_admin_is_composed_once_in_config() -> None:
    assert type(admin.site.get_model_admin(Study)).__module__ == "config.admin"
    for app in APPS:
        tree = ast.parse((ROOT / app / "admin.py").read_text())
        calls = {
            ast.unparse(node.func)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        assert "admin.site.unregister" not in calls, app
        registered = [
            ast.unparse(d)
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            for d in node.decorator_list
        ]
        assert "admin.register(Study)" not in registered, app


def test_the_consent_page_shows_the_studys_content_warning(client: Client) -> None:
    study = make_live_study(content_warning="Some images show surgery.")
    page = client.get(f"/r/{study.slug}/", follow=True).content.decode()
    assert "Content warning." in page and "Some images show surgery." in page
    calm = make_live_study()
    assert "Content warning" not in client.get(f"/r/{calm.slug}/", follow=True).content.decode()


def test_a_new_system_row_defaults_to_synthetic_and_shows_its_parameters(
    admin_client: Client,
) -> None:
    from generation.admin import SystemForm
    from generation.backends import BACKENDS

    form = SystemForm()
    assert form.fields["backend"].initial == "synthetic"
    box = form.fields["backend_params"].widget.attrs
    assert '"width": 512' in box["placeholder"] and "width: whole number 32 to 2048" in box["title"]
    assert set(json.loads(box["data-param-docs"])) == set(BACKENDS)
    # Each backend documents every parameter it takes, and its defaults validate.
    for backend in BACKENDS.values():
        assert all(p.help and p.describe().startswith(p.name) for p in backend.parameters)
    synthetic = BACKENDS["synthetic"]
    defaults = {p.name: p.default for p in synthetic.parameters}
    assert synthetic.validate_params(defaults) == defaults
    page = _change_page(admin_client, make_ready_study(systems=1, prompts=1))
    assert (
        "Parameters of the synthetic backend" in page and "prompt_mismatch: number 0 to 1" in page
    )


def test_what_made_the_media_is_read_only_once_media_exist() -> None:
    from generation.admin import SystemForm

    study = make_ready_study(systems=1, prompts=1)
    system = study.systems.get()
    data = {"name": system.name, "backend": "synthetic", "backend_params": '{"blur": 9}',
            "description": "changed"}  # fmt: skip
    form = SystemForm(data=data, instance=system)
    assert form.fields["backend_params"].disabled and "Media exist" in str(
        form.fields["backend_params"].help_text
    )
    assert form.is_valid(), form.errors
    form.save()
    system.refresh_from_db()
    assert system.backend_params == {"width": 64, "height": 64} and system.description == "changed"
    fresh = make_system(make_study())
    assert not SystemForm(instance=fresh).fields["backend_params"].disabled


def _form_data(page: str) -> dict[str, Any]:
    """What the browser would post back from an admin change page, as it stands."""
    data: dict[str, Any] = {}
    for match in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*>', page):
        tag, name = match.group(0), match.group(1)
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag:
            if "checked" in tag:
                data.setdefault(name, []).append(value.group(1) if value else "on")
        elif 'type="submit"' not in tag and 'type="file"' not in tag:
            data[name] = html.unescape(value.group(1)) if value else ""
    for match in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        data[match.group(1)] = html.unescape(match.group(2).strip())
    for match in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', match.group(2))
        data[match.group(1)] = chosen.group(1) if chosen else ""
    return data


def test_deleting_a_prompt_raters_answered_is_refused_in_a_sentence(admin_client: Client) -> None:
    from tests.factories import answer_pairs, make_judging_rater

    study = make_live_study(systems=2, prompts=2, practice_comparisons=0, attention_check_rate=0)
    answer_pairs(make_judging_rater(study), limit=1)
    url = reverse("admin:studies_study_change", args=[study.pk])
    data = _form_data(_change_page(admin_client, study))
    answered = study.assignments.get(status="answered").prompt_id
    pairs = study.assignments.filter(prompt_id=answered).count()
    row = next(k for k, v in data.items() if k.startswith("prompts-") and v == str(answered))
    data[row.replace("-id", "-DELETE")] = "on"
    page = admin_client.post(url, data).content.decode()
    seen = f"{pairs} pair{'s' if pairs != 1 else ''} and answered 1 of them"
    assert f"This prompt cannot be deleted: raters have seen it in {seen}" in page
    assert "protected related objects" not in page
    assert study.prompts.count() == 2


def test_duplicating_a_study_copies_its_design_and_nothing_made(admin_client: Client) -> None:
    from studies.models import Asset, Criterion, Prompt, System

    study = make_live_study(systems=2, prompts=2, criteria=2, public_title="Which looks better?",
                            practice_comparisons=0)  # fmt: skip
    Prompt.objects.filter(study=study).update(attributes={"group": "a"})
    settled = study.criteria.order_by("order")[0]
    Criterion.objects.filter(pk=settled.pk).update(settled_at=timezone.now(), settled_votes=80)
    button = reverse("admin:studies_study_button", args=[study.pk, "duplicate"])
    assert f'action="{button}"' in _change_page(admin_client, study)
    assert admin_client.get(button).status_code == 405
    page = admin_client.post(button, follow=True).content.decode()
    copy = Study.objects.exclude(pk=study.pk).get()
    copy_url = reverse("admin:studies_study_change", args=[copy.pk])
    assert f'as <a href="{copy_url}">{copy.name}</a>' in page
    assert copy.status == StudyStatus.DRAFT and copy.slug != study.slug
    assert copy.name == f"{study.name} (copy)" and copy.public_title == "Which looks better?"
    assert copy.completion_code_completed != study.completion_code_completed
    assert copy.completion_code_stopped != study.completion_code_stopped
    assert copy.export_salt != study.export_salt
    for model, skip in ((System, {"id", "study"}), (Prompt, {"id", "study"}),
                        (Criterion, {"id", "study", "settled_at", "settled_votes"})):  # fmt: skip
        names = [f.attname for f in model._meta.concrete_fields if f.name not in skip]
        original = list(model.objects.filter(study=study).order_by("pk").values_list(*names))
        copied = list(model.objects.filter(study=copy).order_by("pk").values_list(*names))
        assert copied == original and copied, model.__name__
    assert not Asset.objects.filter(system__study=copy).exists()
    assert not copy.comparisons.exists() and not copy.assignments.exists()
    # A settled criterion's copy is served from the start.
    assert not copy.criteria.filter(settled_at__isnull=False).exists()
    assert not copy.criteria.filter(settled_votes__isnull=False).exists()
    # The list action does the same, with a link to each copy.
    listed = admin_client.post(
        reverse("admin:studies_study_changelist"),
        {"action": "duplicate", "_selected_action": [copy.pk]},
        follow=True,
    ).content.decode()
    assert f"{study.name} (copy) (copy)" in listed and Study.objects.count() == 3


def test_progress_json_for_the_study_page_and_the_job_list(
    admin_client: Client, client: Client
) -> None:
    study = make_ready_study(systems=2, prompts=1)
    job = GenerationJob.objects.create(study=study, expected=2, done=1)
    url = reverse("admin:studies_study_progress", args=[study.pk])
    data = admin_client.get(url).json()
    assert data["status"] == "Ready to launch" and data["assets"] == "2 / 2"
    target = 1 * 1 * study.criteria.count() * study.votes_per_comparison  # 1 prompt, 1 pair
    assert data["votes"] == f"0 / {target}" and data["jobs"][0]["id"] == job.pk
    assert "1 done, 0 failed of 2" in data["jobs"][0]["text"]
    jobs_url = reverse("admin:generation_generationjob_progress")
    listed = admin_client.get(jobs_url, {"ids": f"{job.pk},x,,999999"}).json()["jobs"]
    assert [j["id"] for j in listed] == [job.pk]
    assert client.get(url).status_code == 302 and client.get(jobs_url).status_code == 302


def _export(client: Client, *studies: Study) -> Any:
    return client.post(
        reverse("admin:studies_study_changelist"),
        {"action": "export_votes", "_selected_action": [s.pk for s in studies]},
    )


def _rows(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_exports_hash_ids_per_study_and_mark_checks_without_a_winner(admin_client: Client) -> None:
    from studies.exports import VOTE_COLUMNS, external_code
    from studies.models import ExternalIds
    from tests.factories import answer_pairs, make_judging_rater

    study = make_live_study(systems=2, prompts=2, practice_comparisons=1, attention_check_rate=0.3,
                            comparisons_per_session=4)  # fmt: skip
    rater = make_judging_rater(study, source="prolific", external_id="5f0c" + "a" * 20,
                               external_study_id="b" * 24, external_session_id="c" * 24,
                               questionnaire={"device": "laptop", "age_band": "25-34"})  # fmt: skip
    answer_pairs(rater)
    rows = _rows(_export(admin_client, study))
    assert list(rows[0]) == list(VOTE_COLUMNS)
    kinds = {row["kind"] for row in rows}
    assert {"comparison", "practice"} <= kinds
    for row in rows:
        assert row["participant_id"] == external_code(study, rater.external_id) != rater.external_id
        assert row["device"] == "laptop" and row["age_band"] == "25-34"
        if row["kind"] == "comparison":
            assert row["winner"] and row["passed"] == ""
        else:
            assert row["winner"] == "" and row["passed"] in ("0", "1")
    # The same participant in another study gets another code (salts differ).
    other = make_live_study(systems=2, prompts=1)
    assert external_code(other, rater.external_id) != external_code(study, rater.external_id)
    Study.objects.filter(pk=study.pk).update(external_ids_in_exports=ExternalIds.OMIT)
    assert {r["participant_id"] for r in _rows(_export(admin_client, study))} == {""}
    Study.objects.filter(pk=study.pk).update(external_ids_in_exports=ExternalIds.PLAIN)
    assert {r["participant_id"] for r in _rows(_export(admin_client, study))} == {rater.external_id}


def test_several_studies_export_as_a_zip_of_one_file_each_with_the_dictionary(
    admin_client: Client,
) -> None:
    from studies.exports import DICTIONARY_NAME, VOTE_COLUMNS

    first, second = make_ready_study(systems=2, prompts=1), make_ready_study(systems=2, prompts=1)
    response = _export(admin_client, first, second)
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert names[-1] == DICTIONARY_NAME and len(names) == 3
    # One file per study, in the order of their slugs (as text: "study-103" < "study-98").
    first_slug, second_slug = sorted([first.slug, second.slug])
    assert names[0].startswith(f"{first_slug}-votes-") and names[1].startswith(f"{second_slug}-")
    dictionary = archive.read(DICTIONARY_NAME).decode()
    assert all(f"| `{column}` |" in dictionary for column in VOTE_COLUMNS)
    page = admin_client.get(reverse("admin:studies_study_export_dictionary"))
    assert page.content.decode() == dictionary


def test_pay_is_estimated_before_launch_and_warned_below_the_minimum(admin_client: Client) -> None:
    from decimal import Decimal

    from studies.pay import pay_estimate
    from tests.factories import make_assignment, make_rater, make_vote

    study = make_ready_study(systems=2, prompts=2, comparisons_per_session=12,
                             attention_check_rate=0.1, practice_comparisons=2)  # fmt: skip
    assert pay_estimate(study=study) is None
    assert "set a reward per session" in _change_page(admin_client, study)
    Study.objects.filter(pk=study.pk).update(reward_per_session=Decimal("0.60"))
    study.refresh_from_db()
    pay = pay_estimate(study=study)
    assert pay is not None and pay.screens == 2 + 12 + 2  # practice, pairs, ceil(1.2) checks
    assert pay.session_seconds == 90 + 16 * 8 and pay.hourly == Decimal("9.91")
    assert not pay.below_minimum and "9.91 GBP an hour" in _change_page(admin_client, study)
    Study.objects.filter(pk=study.pk).update(reward_per_session=Decimal("0.30"))
    launch = reverse("admin:studies_study_button", args=[study.pk, "launch"])
    page = admin_client.post(launch, follow=True).content.decode()
    assert "below the minimum of 9.00 GBP an hour" in page
    # Real answers replace the configured time per pair; simulated ones do not count.
    for _ in range(20):
        make_vote(make_assignment(make_rater(study, source="simulated")), response_ms=60_000)
    study.refresh_from_db()
    assert pay_estimate(study=study).source == "as configured"  # type: ignore[union-attr]
    for _ in range(20):
        make_vote(make_assignment(make_rater(study)), response_ms=4000)
    measured = pay_estimate(study=study)
    assert measured is not None and measured.seconds_per_pair == 5.0
    assert measured.source == "the median of 20 real answers"
    assert measured.hourly == (Decimal("0.30") * 3600 / Decimal(90 + 16 * 5)).quantize(
        Decimal("0.01")
    )


def test_personal_data_are_deleted_by_hand_or_after_retention_and_votes_stay(
    admin_client: Client,
) -> None:
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    from studies.models import Rater, Vote
    from tests.factories import make_assignment, make_rater, make_vote

    study = make_ready_study(systems=2, prompts=1)
    keep = {"source": "prolific", "external_id": "a" * 24, "external_study_id": "b" * 24,
            "external_session_id": "c" * 24, "questionnaire": {"device": "phone"},
            "user_agent": "Mozilla/5.0"}  # fmt: skip
    first = make_rater(study, **keep)
    make_vote(make_assignment(first))
    admin_client.post(
        reverse("admin:studies_rater_changelist"),
        {"action": "forget_personal_data", "_selected_action": [first.pk]},
    )
    first.refresh_from_db()
    assert (first.external_id, first.questionnaire, first.user_agent) == ("", {}, "")
    assert first.personal_data_deleted_at is not None
    assert Vote.objects.filter(assignment__rater=first).count() == 1

    Study.objects.filter(pk=study.pk).update(personal_data_retention_days=30)
    old = make_rater(study, **{**keep, "external_id": "d" * 24})
    recent = make_rater(study, **{**keep, "external_id": "e" * 24})
    Rater.objects.filter(pk=old.pk).update(completed_at=timezone.now() - timedelta(days=31))
    Rater.objects.filter(pk=recent.pk).update(completed_at=timezone.now() - timedelta(days=29))
    call_command("purge_personal_data")
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.external_id == "" and old.questionnaire == {}
    assert recent.external_id == "e" * 24 and recent.questionnaire == {"device": "phone"}


def test_the_rater_dashboard_and_the_prolific_lists(admin_client: Client) -> None:
    from studies.models import RaterOutcome
    from studies.raters import stop_session
    from tests.factories import answer_pairs, make_judging_rater, wrong_on_checks

    study = make_live_study(systems=3, prompts=3, comparisons_per_session=6,
                            attention_check_rate=0.5, max_failed_attention_checks=0)  # fmt: skip
    good = make_judging_rater(study, source="prolific", external_id="a" * 24)
    answer_pairs(good)
    careless = make_judging_rater(study, source="prolific", external_id="b" * 24)
    answer_pairs(careless, answer=wrong_on_checks)
    partial = make_judging_rater(study, source="prolific", external_id="c" * 24)
    answer_pairs(partial, limit=2)
    stop_session(rater=partial)
    from studies.raters import complete_session

    good.refresh_from_db()
    if not good.outcome:
        complete_session(rater=good)
    careless.refresh_from_db()
    assert careless.outcome == RaterOutcome.FAILED_CHECKS
    url = reverse("admin:studies_study_raters", args=[study.pk])
    assert f'<a href="{url}">Raters</a>' in _change_page(admin_client, study)
    page = admin_client.get(url).content.decode()
    assert "3 raters, 3 finished" in page and "Failed attention checks" in page
    lists = {
        wanted: admin_client.get(url, {"prolific": wanted}).content.decode().splitlines()[1:]
        for wanted in ("approve", "review", "reject")
    }
    assert [line.split(",")[0] for line in lists["reject"]] == ["b" * 24]
    assert [line.split(",")[0] for line in lists["review"]] == ["c" * 24]
    assert [line.split(",")[0] for line in lists["approve"]] == ["a" * 24]


def test_the_preview_api_answers_from_signed_pairs_and_refuses_others(
    admin_client: Client, client: Client
) -> None:
    from studies import preview

    study = make_ready_study(systems=2, prompts=2, practice_comparisons=0)
    assert "Preview as a rater" in _change_page(admin_client, study)
    page = admin_client.get(reverse("admin:studies_study_preview", args=[study.pk]))
    assert page.status_code == 200 and b"Nothing you answer here is stored" in page.content
    votes = reverse("admin:studies_study_preview_api", args=[study.pk, "votes"])
    first = preview.preview_session(study, 0)["comparisons"][0]
    answered = admin_client.post(votes, {"assignment": first["id"], "answer": "left"},
                                 content_type="application/json")  # fmt: skip
    assert answered.status_code == 201 and answered.json()["session"]["comparisons"]
    forged = admin_client.post(votes, {"assignment": first["id"] + "x", "answer": "left"},
                               content_type="application/json")  # fmt: skip
    assert forged.status_code == 400 and "Not a pair of this preview" in forged.json()["detail"]
    other = make_ready_study(systems=2, prompts=1)
    elsewhere = reverse("admin:studies_study_preview_api", args=[other.pk, "votes"])
    assert admin_client.post(elsewhere, {"assignment": first["id"], "answer": "left"},
                             content_type="application/json").status_code == 400  # fmt: skip
    assert admin_client.get(votes).status_code == 405
    assert client.post(votes, {}, content_type="application/json").status_code == 302
    # The fourth screen is an attention check with a known answer.
    check = preview.preview_screen(study, preview.CHECK_AT)
    assert check is not None and check[0].kind == "attention" and check[0].expected_answer
    assert preview.preview_session(study, preview.SCREENS)["finished"]


def test_the_preview_shows_practice_and_checks_only_as_the_study_asks() -> None:
    from studies import preview

    def kinds(study: Study) -> list[str]:
        screens = [preview.preview_screen(study, n) for n in range(preview.SCREENS)]
        return [screen[0].kind for screen in screens if screen]

    study = make_ready_study(systems=2, prompts=2, practice_comparisons=0)
    study.criteria.update(copy_is_known_worse=True)
    assert kinds(study).count("practice") == 0 and kinds(study).count("attention") == 1
    assert preview.preview_session(study, 0)["progress"]["practice_total"] == 0
    study.practice_comparisons, study.attention_check_rate = 2, 0
    study.save()
    assert kinds(study)[0] == "practice" and "attention" not in kinds(study)
    assert preview.preview_session(study, 0)["progress"]["practice_total"] == 1
