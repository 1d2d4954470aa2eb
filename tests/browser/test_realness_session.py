"""A real-or-generated session in headless Debian Chromium: one image at a time, covered
after its exposure, answered by keyboard (R and G, 1 and 2), practice with its truth."""

import secrets
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page

from generation import jobs
from studies import lifecycle
from studies.models import Assignment, AssignmentStatus, Criterion, Prompt, Rater, Study, System

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
EXPOSURE_MS = 600
ENABLED = "#answers:not(.waiting) button[data-answer=real]:enabled"


def _study() -> Study:
    study = Study.objects.create(
        name="Browser realness",
        slug="browser-realness",
        public_title="Real or generated?",
        study_type="realness",
        comparisons_per_session=6,
        real_share=0.5,
        exposure_ms=EXPOSURE_MS,
        attention_check_rate=0,
        practice_comparisons=2,
    )
    System.objects.create(
        study=study, name="Real set", is_real=True, backend_params={"width": 128, "height": 128}
    )
    for name, params in (("soft", {"blur": 2}), ("noisy", {"noise": 30})):
        System.objects.create(
            study=study, name=name, backend_params={"width": 128, "height": 128, **params}
        )
    # Four real images: practice shows one of them (with its truth), which is then not
    # judged again, and the session still has its three.
    for text in ("a red circle", "two blue squares", "a green tree", "a yellow star"):
        Prompt.objects.create(study=study, text=text)
    Criterion.objects.create(
        study=study, key="realness", question="Is this image real or generated?"
    )
    job = jobs.start_generation(study=study)
    for item_id in job.items.values_list("pk", flat=True):
        jobs.generate_asset(item_id=item_id)
    study.refresh_from_db()
    return lifecycle.launch_study(study=study)


def _screenshots() -> Path:
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _enter(page: Page, base: str) -> None:
    ids = "&".join(
        f"{name}={secrets.token_hex(12)}" for name in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
    )
    page.goto(f"{base}/r/browser-realness/?{ids}")
    page.click("text=I agree, start")
    page.wait_for_url("**/instructions")
    assert "real or generated" in page.inner_text("main").lower()
    page.click("button:has-text('Start')")
    page.wait_for_url("**/compare")


def test_a_real_or_generated_session_by_keyboard(live_server, browser: Browser) -> None:
    study = _study()
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _enter(page, live_server.url)

    # One image, no prompt, no second pane; covered once the exposure has passed.
    page.wait_for_selector("#left-img[src]")
    page.screenshot(path=str(_screenshots() / "realness-desktop-shown.png"))
    assert page.locator("#right-img").is_hidden()
    assert page.locator("#prompt-text").is_hidden()
    assert page.inner_text("#progress-label") == "Practice 1 of 2"
    page.wait_for_selector("#pair.covered", timeout=5_000)
    page.wait_for_selector(ENABLED, timeout=5_000)
    page.screenshot(path=str(_screenshots() / "realness-desktop.png"))
    assert page.locator(".cover").is_visible()

    # Practice: the feedback names the truth.
    for _ in range(2):
        page.wait_for_selector(ENABLED, timeout=15_000)
        page.keyboard.press("g")
        page.wait_for_selector("#feedback:not([hidden])")
        # The image shows again, uncovered, beside its truth.
        assert page.locator("#pair.covered").count() == 0
        text = page.inner_text("#feedback-text")
        assert text.startswith(
            ("Correct. This image was generated", "Not quite. This image is real")
        ), text
        page.keyboard.press("Enter")

    keys = ["r", "g", "1", "2", "R", "G"]
    for n, key in enumerate(keys, start=1):
        page.wait_for_selector(ENABLED, timeout=15_000)
        assert page.inner_text("#progress-label") == f"Image {n} of 6"
        page.keyboard.press(key)
        if n < len(keys):
            page.wait_for_selector("#status:not(:has-text('Saving'))", timeout=15_000)
        if n == 2:
            # A correction is no second look: the image stays covered while it is changed.
            page.wait_for_selector("#undo:not([hidden])")
            page.keyboard.press("u")
            page.wait_for_selector("#banner:has-text('Changing your previous answer')")
            assert page.locator("#pair.covered").count() == 1
            page.wait_for_selector(ENABLED, timeout=15_000)
            page.keyboard.press("r")
            page.wait_for_selector("#status:has-text('changed')", timeout=15_000)
    page.wait_for_url("**/about-you", timeout=15_000)
    assert not errors, errors

    rater = Rater.objects.get(study=study)
    judged = Assignment.objects.filter(rater=rater, kind="judgment").order_by("pk")
    answers = [row.votes.get(is_current=True).answer for row in judged]
    assert answers == ["real", "real", "real", "generated", "real", "generated"]
    corrected = judged[1].votes.get(is_current=False)
    assert corrected.answer == "generated" and corrected.superseded_by.answer == "real"
    assert sum(row.expected_answer == "real" for row in judged) == 3
    assert all(row.exposure_ms == EXPOSURE_MS for row in judged)
    # Answers opened only once the image was covered: response times from the onset.
    first = [row.votes.get(supersedes__isnull=True) for row in judged]
    assert min(vote.response_ms for vote in first) >= EXPOSURE_MS
    assert not Assignment.objects.filter(rater=rater, status=AssignmentStatus.SERVED).exists()


def test_a_real_or_generated_page_on_a_phone(live_server, browser: Browser) -> None:
    _study()
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    _enter(page, live_server.url)
    page.wait_for_selector(ENABLED, timeout=15_000)
    page.screenshot(path=str(_screenshots() / "realness-phone.png"))
    image = page.locator("#left-img").bounding_box()
    answers = page.locator("#answers").bounding_box()
    assert image and answers
    assert image["width"] <= 390
    assert answers["y"] + answers["height"] <= 844  # the answers are on screen
    page.locator("button[data-answer=generated]").tap()
    page.wait_for_selector("#feedback:not([hidden])")
