"""A whole Prolific-style session in headless Debian Chromium, driven by Playwright."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page

from generation import jobs
from studies import lifecycle
from studies.models import (
    Assignment,
    AssignmentStatus,
    Criterion,
    Prompt,
    Rater,
    Study,
    System,
    Vote,
)

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
PID, STUDY_ID, SESSION_ID = (
    "5f0c9a1b2c3d4e5f60718293",
    "6a0b1c2d3e4f506172839405",
    "7b1c2d3e4f5061728394a5b6",
)
PROLIFIC = "https://app.prolific.com/submissions/complete"
MIN_VIEWING_MS = 400
ENABLED = "#answers:not(.waiting) button[data-answer=left]:enabled"


def _study() -> Study:
    study = Study.objects.create(
        name="Browser session",
        slug="browser-session",
        public_title="Picture comparison",
        comparisons_per_session=10,
        attention_check_rate=0,
        practice_comparisons=2,
        min_viewing_ms=MIN_VIEWING_MS,
        completion_redirect_url=PROLIFIC,
    )
    for name, params in (
        ("clean", {}),
        ("soft", {"blur": 2}),
        ("noisy", {"noise": 30}),
        ("broken", {"noise": 40, "colour_shift": 60}),
    ):
        System.objects.create(
            study=study, name=name, backend_params={"width": 160, "height": 160, **params}
        )
    for text in ("a red circle", "two blue squares", "a green tree beside a house"):
        Prompt.objects.create(study=study, text=text, category="objects")
    # Practice teaches with damaged copies, a known worse answer to a quality question.
    Criterion.objects.create(
        study=study, key="quality", question="Which image looks better?", copy_is_known_worse=True
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


def _start(page: Page, base: str) -> None:
    page.goto(
        f"{base}/r/browser-session/?PROLIFIC_PID={PID}&STUDY_ID={STUDY_ID}&SESSION_ID={SESSION_ID}"
    )
    # Focus lands on the consent button (autofocus applies after load: wait for it, under
    # a loaded machine it can come a moment after goto returns).
    page.wait_for_function(
        "() => document.activeElement"
        " && document.activeElement.textContent.trim() === 'I agree, start'"
    )
    page.keyboard.press("Enter")
    page.wait_for_url("**/instructions")
    page.wait_for_function("() => document.activeElement.textContent.trim() === 'Start'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/compare")


def _answer(page: Page, key: str, *, last: bool = False) -> None:
    page.wait_for_selector(ENABLED, timeout=15_000)
    page.keyboard.press(key)
    if not last:  # the last answer leaves the page
        page.wait_for_selector("#status:not(:has-text('Saving'))", timeout=15_000)


def test_prolific_session_by_keyboard_from_consent_to_completion_redirect(
    live_server, browser: Browser
) -> None:
    study = _study()
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The pages run under the rater Content-Security-Policy: nothing they need is refused.
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.route(f"{PROLIFIC}*", lambda route: route.fulfill(status=200, body="Prolific (stub)"))
    _start(page, live_server.url)

    # Practice: two pairs with feedback.
    for _ in range(2):
        page.wait_for_function(
            "() => document.getElementById('progress-label').textContent.startsWith('Practice')"
        )
        question = page.inner_text("#question")
        _answer(page, "1")
        page.wait_for_selector("#feedback:not([hidden])")
        feedback = page.inner_text("#feedback-text")
        # The feedback covers neither image it talks about.
        box = page.locator("#feedback").bounding_box()
        for side in ("#left-img", "#right-img"):
            image = page.locator(side).bounding_box()
            assert (
                box
                and image
                and (
                    box["y"] + box["height"] <= image["y"]
                    or image["y"] + image["height"] <= box["y"]
                )
            ), side
        # The feedback explains in the question's own words (not "the intact one" for a
        # question about matching the prompt).
        assert feedback.startswith(("Correct. ", "Not quite: ")), feedback
        assert question in feedback or "intact" not in feedback, (question, feedback)
        page.keyboard.press("Enter")

    # Ten real pairs by keyboard, correcting the third.
    keys = ["1", "ArrowRight", "0", "9", "2", "ArrowLeft", "1", "2", "0", "1"]
    for n, key in enumerate(keys, start=1):
        page.wait_for_selector(ENABLED, timeout=15_000)
        assert page.inner_text("#progress-label") == f"Pair {n} of 10"
        if n == 1:
            page.screenshot(path=str(_screenshots() / "compare-desktop.png"))
        _answer(page, key, last=n == len(keys))
        if n == 3:
            page.wait_for_selector("#undo:not([hidden])")
            page.keyboard.press("u")
            page.wait_for_selector("#banner:has-text('Changing your previous answer')")
            _answer(page, "2")
            page.wait_for_selector("#status:has-text('changed')")

    page.wait_for_url("**/about-you", timeout=15_000)
    page.select_option("select[name=device]", "desktop")
    page.click("button[type=submit]")
    page.wait_for_url(f"{PROLIFIC}*", timeout=15_000)
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"cc": [study.completion_code_completed]}
    assert not errors, errors
    assert not refused, refused

    rater = Rater.objects.get(study=study)
    assert (
        rater.source,
        rater.external_id,
        rater.external_study_id,
        rater.external_session_id,
    ) == (
        "prolific",
        PID,
        STUDY_ID,
        SESSION_ID,
    )
    assert rater.outcome == "completed" and rater.questionnaire["device"] == "desktop"
    votes = Vote.objects.filter(assignment__rater=rater)
    assert votes.filter(assignment__kind="practice").count() == 2
    real = votes.filter(assignment__kind="comparison").order_by("created_at", "pk")
    assert real.count() == 11  # ten answers and one correction
    assert real.filter(is_current=True).count() == 10
    superseded = real.get(is_current=False)
    correction = superseded.superseded_by
    assert (superseded.answer, correction.answer) == ("tie", "right")
    answers = [v.answer for v in real.filter(is_current=True)]
    assert answers == [
        "left",
        "right",
        "right",
        "both_bad",
        "right",
        "left",
        "left",
        "right",
        "tie",
        "left",
    ]
    # Answers were disabled until the images were on screen for the minimum time.
    assert min(v.response_ms for v in real.filter(supersedes__isnull=True)) >= MIN_VIEWING_MS
    assert not Assignment.objects.filter(rater=rater, status=AssignmentStatus.SERVED).exists()


def test_phone_layout_stacks_the_pair_and_keeps_answers_in_reach(
    live_server, browser: Browser
) -> None:
    _study()
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    _start(page, live_server.url)
    page.wait_for_selector(ENABLED, timeout=15_000)
    page.screenshot(path=str(_screenshots() / "compare-phone.png"))
    left = page.locator("#left-img").bounding_box()
    right = page.locator("#right-img").bounding_box()
    answers = page.locator("#answers").bounding_box()
    assert left and right and answers
    assert right["y"] >= left["y"] + left["height"]  # stacked, not side by side
    assert answers["y"] + answers["height"] <= 844  # the answer bar is on screen
    assert not page.locator(".answer kbd").first.is_visible()  # no key hints on touch
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    bottom = page.locator("#right-img").bounding_box()
    bar = page.locator("#answers").bounding_box()
    assert bottom and bar and bottom["y"] + bottom["height"] <= bar["y"]  # nothing under it
    page.tap("button[data-answer=right]")
    page.wait_for_selector("#feedback:not([hidden])")


def test_enlarge_shows_both_media_as_large_as_the_viewport_allows(
    live_server, browser: Browser
) -> None:
    _study()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _start(page, live_server.url)
    page.wait_for_selector(ENABLED, timeout=15_000)
    page.keyboard.press("e")
    page.wait_for_selector("#lightbox:not([hidden])")
    page.screenshot(path=str(_screenshots() / "compare-enlarged.png"))
    for side in ("left", "right"):
        box = page.locator(f"#lightbox-{side}").bounding_box()
        assert box and box["width"] > 560 and box["height"] > 600  # the outputs are 160 px
    assert page.locator("#lightbox figcaption .wide").first.is_visible()  # labels stay
    page.keyboard.press("Escape")
    page.wait_for_selector("#lightbox", state="hidden")


def test_a_key_pressed_before_answers_open_is_acknowledged(live_server, browser: Browser) -> None:
    study = _study()
    study.min_viewing_ms = 3000  # long enough to press a key before answers open
    study.save(update_fields=["min_viewing_ms"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _start(page, live_server.url)
    page.wait_for_function("() => document.getElementById('left-img').complete")
    page.keyboard.press("1")
    page.wait_for_selector("#status:has-text('Answers open in a moment')")
    assert not Vote.objects.exists()
    page.wait_for_selector(ENABLED, timeout=15_000)
    page.wait_for_selector("#status:has-text('You can answer now')")
    page.keyboard.press("1")
    page.wait_for_selector("#feedback:not([hidden])")
    assert Vote.objects.count() == 1


def test_an_image_that_fails_to_load_is_recorded_and_replaced(
    live_server, browser: Browser
) -> None:
    study = _study()
    study.practice_comparisons = 0
    study.save()
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    broken: list[str] = []

    def fail_first_image(route):  # type: ignore[no-untyped-def]
        if not broken:
            broken.append(route.request.url)
            route.fulfill(status=500, body="boom")
        else:
            route.continue_()

    page.route("**/media/a/*", fail_first_image)
    _start(page, live_server.url)
    page.wait_for_selector(ENABLED, timeout=15_000)
    failed = Assignment.objects.get(study=study, status=AssignmentStatus.REPLACED)
    assert failed.load_error
    assert Assignment.objects.filter(study=study, status=AssignmentStatus.SERVED).count() == 2
    widths = page.eval_on_selector_all("#pair img", "images => images.map(i => i.naturalWidth)")
    assert widths == [160, 160]
    assert len(broken) == 1
