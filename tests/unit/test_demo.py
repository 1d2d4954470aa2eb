import pytest
from django.core.management import call_command

from generation.demo import DEMO_SLUG
from generation.models import GenerationJob
from studies.models import Study

pytestmark = pytest.mark.django_db


def test_seed_demo_twice_seeds_nothing_twice(
    django_capture_on_commit_callbacks, settings, tmp_path
) -> None:
    settings.VAR_DIR = tmp_path
    with django_capture_on_commit_callbacks():
        call_command("seed_demo")
        call_command("seed_demo")
    study = Study.objects.get(slug=DEMO_SLUG)
    assert study.systems.count() == 4
    assert study.prompts.count() == 12
    assert set(study.prompts.values_list("category", flat=True)) == {
        "objects",
        "scenes",
        "counting",
    }
    assert study.criteria.count() == 2
    assert GenerationJob.objects.filter(study=study).count() == 1
    assert GenerationJob.objects.get(study=study).expected == 48


def test_demo_admin_password_is_printed_again_not_reset(settings, tmp_path, capsys) -> None:
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--links-only")
    first = capsys.readouterr().out
    call_command("seed_demo", "--links-only")
    second = capsys.readouterr().out
    assert "password" in first and first == second
    from django.contrib.auth import authenticate

    password = (tmp_path / "demo-admin-password.txt").read_text().strip()
    assert authenticate(username="admin", password=password) is not None
