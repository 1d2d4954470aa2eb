"""The study page and the job list in headless Debian Chromium: progress moves on the
page while the worker works, without a reload."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page

from generation.models import GenerationJob, JobStatus
from tests.factories import make_prompt, make_study, make_system

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
