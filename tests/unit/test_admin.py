import csv
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from generation.admin import SystemForm
from generation.models import GenerationJob
from studies.models import Study, StudyStatus
from tests.factories import (
    make_assignment,
    make_judging_rater,
    make_live_study,
    make_prompt,
    make_rater,
    make_ready_study,
    make_study,
    make_system,
    make_vote,
    png_bytes,
)

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:studies_study_changelist"


def _action(client: Client, action: str, *studies: Study):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [s.pk for s in studies]},
        follow=True,
    )


def test_changelist_shows_progress_against_targets(admin_client: Client) -> None:
    study = make_ready_study(systems=3, prompts=2, votes_per_comparison=2)
    make_vote(make_assignment(make_rater(study)))
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert study.name in page
    assert "6 / 6" in page  # media made / expected
    assert "1 / 12" in page  # votes / target: 2 prompts x 3 pairs x 1 criterion x 2


def test_study_page_shows_a_media_grid_per_system(admin_client: Client) -> None:
    study = make_ready_study(systems=2, prompts=3)
    page = admin_client.get(reverse("admin:studies_study_change", args=[study.pk])).content.decode()
    assert "Generated media" in page
    assert "Ready to launch" in page
    for system in study.systems.all():
        assert system.name in page
        for asset in system.assets.filter(kind="output"):
            assert asset.file.url in page


def test_launch_action_opens_a_ready_study_and_explains_a_refusal(admin_client: Client) -> None:
    ready = make_ready_study()
    draft = make_study()
    response = _action(admin_client, "launch", ready, draft)
    text = response.content.decode()
    assert f"Launched {ready.name!r}" in text.replace("&#x27;", "'")
    assert "it has 0 system(s)" in text
    ready.refresh_from_db()
    draft.refresh_from_db()
    assert (ready.status, draft.status) == (StudyStatus.LIVE, StudyStatus.DRAFT)
    _action(admin_client, "pause", ready)
    ready.refresh_from_db()
    assert ready.status == StudyStatus.PAUSED
    _action(admin_client, "close", ready)
    ready.refresh_from_db()
    assert ready.status == StudyStatus.CLOSED


def test_generate_action_queues_a_job_after_commit(
    admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    study = make_study()
    make_system(study)
    make_prompt(study)
    with django_capture_on_commit_callbacks() as callbacks:
        response = _action(admin_client, "generate_media", study)
    job = GenerationJob.objects.get(study=study)
    assert f"Generation job #{job.pk}" in response.content.decode()
    assert job.expected == 1 and len(callbacks) == 1


def test_export_votes_streams_a_csv_naming_systems_and_winners(admin_client: Client) -> None:
    study = make_ready_study(systems=2, prompts=1)
    assignment = make_assignment(make_rater(study, source="prolific", external_id="PID123"))
    make_vote(assignment, answer="right", response_ms=2345)
    response = _action(admin_client, "export_votes", study)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith(f'attachment; filename="{study.slug}-votes-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["winner"] == assignment.right_asset.system.name
    assert (row["answer"], row["response_ms"], row["kind"]) == ("right", "2345", "comparison")
    assert row["left_system"] == assignment.left_asset.system.name
    # The participant's id is hashed with the study's salt by default.
    assert row["participant_id"] and row["participant_id"] != "PID123"
    assert (
        "PID123"
        not in b"".join(_action(admin_client, "export_votes", study).streaming_content).decode()
    )
    assert row["software"].startswith("verdict")


def test_prompt_upload_page_imports_and_reports(admin_client: Client) -> None:
    study = make_study()
    url = reverse("admin:studies_study_import_prompts", args=[study.pk])
    upload = SimpleUploadedFile("p.csv", b"text,category\na cat,animals\na dog,animals\n")
    response = admin_client.post(url, {"file": upload}, follow=True)
    assert "Imported 2 prompt(s)" in response.content.decode()
    assert study.prompts.count() == 2
    bad = SimpleUploadedFile("p.csv", b"text\n\n,\n")
    response = admin_client.post(url, {"file": bad})
    assert "Nothing imported: line 3: the text is empty" in response.content.decode()
    assert study.prompts.count() == 2


def test_media_import_page_accepts_a_zip(
    admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    study = make_study()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.csv", "file,system,prompt,seed\nx.png,Model X,a cat,0\n")
        archive.writestr("x.png", png_bytes())
    upload = SimpleUploadedFile("outputs.zip", buffer.getvalue())
    url = reverse("admin:studies_study_import_media", args=[study.pk])
    with django_capture_on_commit_callbacks():
        response = admin_client.post(url, {"archive": upload}, follow=True)
    assert "Import job #" in response.content.decode()
    assert study.systems.get().name == "Model X"
    response = admin_client.post(url, {"server_path": "/no/such/folder"})
    assert "does not exist on the server" in response.content.decode()


def test_system_form_checks_backend_parameters() -> None:
    study = make_study()
    form = SystemForm(
        data={
            "name": "A",
            "backend": "synthetic",
            "backend_params": '{"noise": 500}',
            "description": "",
        },
        instance=make_system(study).__class__(study=study),
    )
    assert not form.is_valid()
    assert "outside [0, 128]" in str(form.errors["backend_params"])
    form = SystemForm(
        data={
            "name": "A",
            "backend": "synthetic",
            "backend_params": '{"noise": 5}',
            "description": "",
        },
        instance=make_system(study).__class__(study=study),
    )
    assert form.is_valid(), form.errors


def test_admin_pages_need_a_staff_login(client: Client) -> None:
    study = make_study()
    response = client.get(reverse("admin:studies_study_change", args=[study.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_flags_are_reviewed_in_the_admin_and_cleared_media_come_back(
    admin_client: Client,
) -> None:
    from django.db import transaction

    from studies import assignments
    from studies.models import Flag

    study = make_live_study(systems=3, prompts=2, practice_comparisons=0, attention_check_rate=0)
    rater = make_judging_rater(study)
    screen = assignments.session_state(rater=rater).screens[0]
    with transaction.atomic():
        desk = assignments.open_desk(slug=study.slug, session_token=rater.session_token)
        assignments.flag(desk, screen[0].token, "disturbing", "both")
    flag = Flag.objects.get()
    page = admin_client.get(reverse("admin:studies_flag_changelist")).content.decode()
    assert "Disturbing or offensive" in page and screen[0].left_asset.file.url in page
    response = admin_client.post(
        reverse("admin:studies_flag_changelist"),
        {"action": "clear", "_selected_action": [flag.pk]},
        follow=True,
    )
    assert "1 flag(s) cleared" in response.content.decode()
    flag.refresh_from_db()
    assert flag.decision == "cleared" and flag.reviewed_at is not None
    assert not any(asset.withheld for asset in flag.assets.all())


def test_an_assets_page_shows_how_it_was_made(admin_client: Client) -> None:
    """The generation log's figures (latency, GPU-seconds, peak memory, batch, device,
    versions) are shown by name on the asset's page, not only inside a JSON blob."""
    from studies.models import Asset

    study = make_ready_study(systems=2, prompts=1)
    asset = Asset.objects.outputs().filter(system__study=study).first()
    assert asset is not None
    asset.generation_meta = {
        "seconds": 0.75, "latency_s": 1.5, "gpu_seconds": 1.5, "peak_gpu_memory_mb": 5120.0,
        "batch_size": 2, "device": "NVIDIA H100", "versions": {"torch": "2.13.0"},
    }  # fmt: skip
    asset.save(update_fields=["generation_meta"])
    page = admin_client.get(reverse("admin:studies_asset_change", args=[asset.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    for shown in (
        "GPU-seconds</strong>: 1.5",
        "peak GPU memory (MB)</strong>: 5120.0",
        "batch size</strong>: 2",
        "device</strong>: NVIDIA H100",
        "torch 2.13.0",
    ):
        assert shown in text, shown  # fmt: skip
