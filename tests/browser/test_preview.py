"""A researcher previews the real comparison page before launch in headless Chromium:
practice with its feedback, sample pairs and an attention check, and nothing is stored."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser
from playwright.sync_api import Error as PlaywrightError

from studies.models import Assignment, Rater, StudyStatus, Vote
from tests.factories import make_ready_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ENABLED = "#answers button:not([disabled])"


def test_the_preview_walks_the_real_page_and_stores_nothing(live_server, browser: Browser) -> None:
    study = make_ready_study(systems=3, prompts=3, practice_comparisons=1, min_viewing_ms=100)
    assert study.status == StudyStatus.READY
    get_user_model()._default_manager.create_superuser("staff", "s@localhost", "pw-1234567")
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    url = f"/admin/studies/study/{study.pk}/preview/"
    page.goto(f"{live_server.url}/admin/login/?next={url}")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw-1234567")
    page.click("input[type=submit]")
    page.wait_for_selector(".preview-note")
    seen_feedback = False
    for _ in range(12):
        if page.url.endswith(f"/admin/studies/study/{study.pk}/change/"):
            break
        try:
            page.wait_for_selector(f"{ENABLED}, #feedback:not([hidden])", timeout=15_000)
        except PlaywrightError:  # the tour ended: the page went back to the study
            break
        if page.locator("#feedback:not([hidden])").count():
            seen_feedback = True
            page.keyboard.press("Enter")
            continue
        page.keyboard.press("1")
        page.wait_for_timeout(300)
    page.wait_for_url(f"**/admin/studies/study/{study.pk}/change/", timeout=15_000)
    assert seen_feedback and errors == []
    assert not Assignment.objects.exists() and not Vote.objects.exists()
    assert not Rater.objects.exists()
