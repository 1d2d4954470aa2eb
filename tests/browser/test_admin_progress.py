"""The study page and the job list in headless Debian Chromium: progress moves on the
page while the worker works, without a reload, and the study page's buttons do what
they say."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page

from generation.models import GenerationJob, JobStatus
from studies.models import StudyStatus
from tests.factories import make_prompt, make_ready_study, make_study, make_system

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page: Page, base: str, next_url: str) -> None:
    get_user_model()._default_manager.create_superuser("staff", "s@localhost", "pw-1234567")
    page.goto(f"{base}/admin/login/?next={next_url}")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw-1234567")
    page.click("input[type=submit]")


def test_progress_moves_without_a_reload(live_server, browser: Browser) -> None:
    study = make_study()
    make_system(study)
    make_prompt(study)
    job = GenerationJob.objects.create(study=study, status=JobStatus.RUNNING, expected=4)
    page = browser.new_page()
    _login(page, live_server.url, f"/admin/studies/study/{study.pk}/change/")
    page.wait_for_selector(".verdict-jobs li")
    assert "0 done, 0 failed of 4" in page.locator(".verdict-jobs").inner_text()
    page.evaluate("window.notReloaded = true")
    GenerationJob.objects.filter(pk=job.pk).update(done=3, failed=1, status=JobStatus.FAILED)
    page.wait_for_function(
        "document.querySelector('.verdict-jobs').textContent.includes('3 done, 1 failed of 4')",
        timeout=10_000,
    )
    assert page.evaluate("window.notReloaded") is True

    page.goto(f"{live_server.url}/admin/generation/generationjob/")
    GenerationJob.objects.filter(pk=job.pk).update(done=2, failed=0, status=JobStatus.RUNNING)
    page.evaluate("window.notReloaded = true")
    page.wait_for_function(
        f"document.querySelector('[data-job=\"{job.pk}\"] span').textContent === '2 / 4'",
        timeout=10_000,
    )
    assert page.locator(f'[data-job="{job.pk}"] progress').get_attribute("value") is not None
    assert page.evaluate("window.notReloaded") is True


def test_the_study_page_buttons_run_their_action_and_enter_still_saves(
    live_server, browser: Browser
) -> None:
    study = make_ready_study(pilot_raters=2)
    page = browser.new_page()
    _login(page, live_server.url, f"/admin/studies/study/{study.pk}/change/")
    # Enter in a field submits the change form (saves), never a study button.
    page.fill("#id_name", "Renamed by Enter")
    page.press("#id_name", "Enter")
    page.wait_for_url("**/admin/studies/study/")
    study.refresh_from_db()
    assert (study.name, study.status) == ("Renamed by Enter", StudyStatus.READY)

    page.goto(f"{live_server.url}/admin/studies/study/{study.pk}/change/")
    # Every button posts to its own action (a form nested in the change form would be
    # dropped by the parser, and its button would save the study instead).
    owners = page.evaluate(
        "[...document.querySelectorAll('.verdict-actions button')]"
        ".map(b => [b.textContent, b.form ? b.form.getAttribute('action') : null])"
    )
    assert [label for label, _ in owners][:3] == ["Generate media", "Launch pilot", "Launch"]
    for label, action in owners:
        assert action and action.startswith(f"/admin/studies/study/{study.pk}/do/"), label
    page.click(".verdict-actions button:has-text('Launch pilot')")
    page.wait_for_selector(".messagelist")
    assert "Started the pilot of" in page.locator(".messagelist").inner_text()
    assert page.locator("[data-progress=status]").inner_text() == "Piloting"
    study.refresh_from_db()
    assert study.status == StudyStatus.PILOT
    page.click(".verdict-actions button:has-text('Discard the pilot')")
    page.wait_for_selector(".messagelist")
    study.refresh_from_db()
    assert study.status == StudyStatus.READY
